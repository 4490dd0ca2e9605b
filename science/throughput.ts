/**
 * Training cost on this machine from measured throughput: seconds per training image as a line in L per data set,
 * fitted to the training benchmark's results (benchmarks/results/training.json, written by `npm run bench`). The
 * estimator of presets (`npm run estimate`) and the dry run's per-node estimate both use it.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { DatasetName } from "./data/datasets.ts";

/** Least-squares line y = intercept + slope * x. */
export function linearFit(xs: ReadonlyArray<number>, ys: ReadonlyArray<number>): { intercept: number; slope: number } {
  if (xs.length !== ys.length || xs.length < 2) throw new RangeError("linearFit needs two or more (x, y) pairs");
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  if (sxx === 0) throw new RangeError("linearFit needs two distinct x values");
  const slope = sxy / sxx;
  return { intercept: my - slope * mx, slope };
}

/** Measured throughput of one configuration: training images per second at L blocks per section. */
export interface ThroughputPoint {
  readonly dataset: DatasetName;
  readonly L: number;
  readonly trainImgPerSec: number;
}

/** The training benchmark's shapes (benchmarks/training.ts) by the data set they stand for. */
const DATASET_OF_SHAPE: Readonly<Record<string, DatasetName>> = { mnist: "mnist", cifar: "cifar10" };

/** The training benchmark's measured throughput (its results' `throughput` rows) as points to fit. */
export const throughputPoints = (
  rows: ReadonlyArray<{
    readonly shape: string;
    readonly blocks: number;
    readonly oursImgPerSec: { readonly median: number };
  }>,
): ThroughputPoint[] =>
  rows.map((t) => {
    const dataset = DATASET_OF_SHAPE[t.shape];
    if (dataset === undefined) throw new Error(`training results: unknown shape '${t.shape}'`);
    return { dataset, L: t.blocks, trainImgPerSec: t.oursImgPerSec.median };
  });

/** Seconds per training image = intercept + slope * L, and the depths it was fitted to. */
export interface SecondsPerImage {
  readonly intercept: number;
  readonly slope: number;
  readonly fittedFrom: number[];
}

/**
 * Seconds per training image as a line in L (the work is a fixed part plus 3 blocks per L) for each data set with
 * two or more measured depths.
 */
export const secondsPerImageByDataset = (
  points: ReadonlyArray<ThroughputPoint>,
): Partial<Record<DatasetName, SecondsPerImage>> => {
  const fits: Partial<Record<DatasetName, SecondsPerImage>> = {};
  for (const dataset of new Set(points.map((p) => p.dataset))) {
    const mine = points.filter((p) => p.dataset === dataset);
    if (mine.length < 2) continue;
    const fit = linearFit(
      mine.map((p) => p.L),
      mine.map((p) => 1 / p.trainImgPerSec),
    );
    fits[dataset] = { ...fit, fittedFrom: mine.map((p) => p.L) };
  }
  return fits;
};

/** The committed training benchmark results of this checkout. */
export const TRAINING_RESULTS = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../benchmarks/results/training.json",
);

let measured: Partial<Record<DatasetName, SecondsPerImage>> | null | undefined;

/**
 * Seconds per training image of `dataset` at L blocks on this machine, from {@link TRAINING_RESULTS}; undefined when
 * that file is absent or unreadable or has no fit for the data set (an estimate is a convenience, never an error).
 */
export const measuredSecondsPerImage = (dataset: DatasetName, L: number): number | undefined => {
  if (measured === undefined) {
    try {
      const results = JSON.parse(readFileSync(TRAINING_RESULTS, "utf8")) as {
        throughput: Parameters<typeof throughputPoints>[0];
      };
      measured = secondsPerImageByDataset(throughputPoints(results.throughput));
    } catch {
      measured = null;
    }
  }
  const fit = measured?.[dataset];
  return fit === undefined ? undefined : fit.intercept + fit.slope * L;
};
