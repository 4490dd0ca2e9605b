/**
 * Wall time of a preset's training and probe runs on this machine, from the measured training throughput
 * (benchmarks/results/training.json, written by `npm run bench`): `npm run estimate -- --preset mnist-cpu`.
 * With `--gpus N`: also the GPU model's wall time with N GPUs, one run per GPU job (docs/cluster.md).
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import type { TrainingResult } from "./training.ts";
import { gpuAssumptions } from "./bench.ts";
import { estimateCpuSweep, gpuSweepWallHours, presetRuns } from "./lib/estimate.ts";
import { throughputPoints } from "../science/throughput.ts";
import { repoRoot } from "./lib/measure.ts";

const { values } = parseArgs({
  options: { preset: { type: "string" }, results: { type: "string" }, gpus: { type: "string" } },
});
const resultsFile = values.results ?? path.join(repoRoot, "benchmarks/results/training.json");
const training = JSON.parse(readFileSync(resultsFile, "utf8")) as TrainingResult;
const estimate = estimateCpuSweep(throughputPoints(training.throughput), presetRuns(values.preset));
console.log(`preset ${values.preset ?? "(default)"}: throughput from ${path.relative(repoRoot, resultsFile)}`);
for (const [dataset, fit] of Object.entries(estimate.secondsPerImage)) {
  console.log(
    `  ${dataset}: ${(fit.intercept * 1e3).toFixed(2)} ms + ${(fit.slope * 1e3).toFixed(3)} ms x L per image`,
  );
}
for (const r of estimate.runs) {
  const minutesPerEpoch = (r.secondsPerEpoch / 60).toFixed(1);
  console.log(
    `  ${r.dataset} L=${r.L}: ${r.epochs} x ${r.trainImages} images, ${minutesPerEpoch} min/epoch, ${(r.hours * 60).toFixed(0)} min`,
  );
}
console.log(`total: ${estimate.totalHours.toFixed(2)} h`);
if (values.gpus !== undefined) {
  const gpus = Number(values.gpus);
  const assumptions = gpuAssumptions(training);
  if (!Number.isInteger(gpus) || gpus < 1) console.error(`estimate: --gpus expects a positive integer`);
  else if (assumptions === undefined)
    console.error("estimate: the training results hold no op census for the GPU model");
  else {
    const { wallHours, longestRunHours } = gpuSweepWallHours(assumptions, gpus, presetRuns(values.preset));
    const perOpUs = (assumptions.secondsPerOp * 1e6).toFixed(0);
    console.log(
      `${gpus} GPU(s), GPU model (${assumptions.sustainedFlops / 1e12} TFLOP/s sustained, ${perOpUs} us per op): ` +
        `${wallHours.toFixed(1)} h wall, longest run ${longestRunHours.toFixed(1)} h`,
    );
  }
}
