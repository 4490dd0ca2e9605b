/**
 * Wall time of a preset's training and probe runs on this machine, from the measured training throughput
 * (benchmarks/results/training.json, written by `npm run bench`): `npm run estimate -- --preset mnist-cpu`.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { loadConfig } from "../pipeline/config.ts";
import { DATASETS } from "../science/data/datasets.ts";
import { trainParamsFor, runsOf } from "../stages/config.ts";
import { paperPipeline } from "../stages/index.ts";
import { estimateCpuSweep, type SweepRun, type ThroughputPoint } from "./lib/estimate.ts";
import { repoRoot } from "./lib/ml-measure.ts";

const { values } = parseArgs({ options: { preset: { type: "string" }, results: { type: "string" } } });
const resultsFile = values.results ?? path.join(repoRoot, "benchmarks/results/training.json");
const { config } = loadConfig(paperPipeline, values.preset === undefined ? {} : { preset: values.preset });

const runs: SweepRun[] = config.datasets.flatMap((dataset) =>
  runsOf(config, dataset).map(({ L, seed }) => {
    const p = trainParamsFor(config, dataset, L, seed);
    const trainImages = p.trainSubset > 0 ? p.trainSubset : DATASETS[dataset].splitSizes.train;
    return { dataset, L, epochs: p.epochs, trainImages, testImages: config[dataset].probeImages, batchSize: p.batchSize };
  }),
);
const shapes: Record<string, "mnist" | "cifar10"> = { mnist: "mnist", cifar: "cifar10" };
const training = JSON.parse(readFileSync(resultsFile, "utf8")) as {
  throughput: Array<{ shape: string; blocks: number; oursImgPerSec: { median: number } }>;
};
const points: ThroughputPoint[] = training.throughput.map((t) => ({
  dataset: shapes[t.shape]!,
  L: t.blocks,
  trainImgPerSec: t.oursImgPerSec.median,
}));
const estimate = estimateCpuSweep(points, runs);
console.log(`preset ${values.preset ?? "(default)"}: throughput from ${path.relative(repoRoot, resultsFile)}`);
for (const [dataset, fit] of Object.entries(estimate.secondsPerImage)) {
  console.log(`  ${dataset}: ${(fit.intercept * 1e3).toFixed(2)} ms + ${(fit.slope * 1e3).toFixed(3)} ms x L per image`);
}
for (const r of estimate.runs) {
  console.log(`  ${r.dataset} L=${r.L}: ${r.epochs} x ${r.trainImages} images, ${(r.secondsPerEpoch / 60).toFixed(1)} min/epoch, ${(r.hours * 60).toFixed(0)} min`);
}
console.log(`total: ${estimate.totalHours.toFixed(2)} h`);
