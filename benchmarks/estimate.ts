/**
 * Wall time of a preset's training and probe runs on this machine, from the measured training throughput
 * (benchmarks/results/training.json, written by `npm run bench`): `npm run estimate -- --preset mnist-cpu`.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import type { TrainingResult } from "./training.ts";
import { estimateCpuSweep, presetRuns } from "./lib/estimate.ts";
import { throughputPoints } from "../science/throughput.ts";
import { repoRoot } from "./lib/measure.ts";

const { values } = parseArgs({ options: { preset: { type: "string" }, results: { type: "string" } } });
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
