/**
 * Aggregate stage statistics: from per-(block, image) probe rows to per-block moments,
 * per-section computational distances, network totals, and summaries across seeds.
 *
 * A residual block maps x_{l+1} = x_l + f(x_l). For one trained network of depth L
 * (L blocks in each of 3 sections) the probe measures, per block and image,
 * abs = ||x_{l+1} - x_l||_2, scaled = abs / ||x_l||_2 and cosine = cos(x_l, x_{l+1}).
 * Standard deviations are SAMPLE standard deviations (divisor n-1), null below two values.
 */
import { Schema } from "effect";
import { Double, Int32, Utf8 } from "../../pipeline/table.ts";
import type { ProbeRow } from "../probe.ts";
import { RunningMoments, meanAndSampleStd } from "./stats.ts";

/** Number of residual sections in the network (one per feature-map resolution). */
export const SECTION_COUNT = 3;

/** The `section` value used for whole-network totals (sum over the 3 sections). */
export const NETWORK_SECTION = -1;

/** What the aggregate reads of a probe row (science/probe.ts): section and block 0-based. */
export type ProbeMeasurement = Pick<ProbeRow, "section" | "block" | "image" | "abs" | "scaled" | "cosine">;

/** Identifies one trained network and carries its test error. */
export interface RunInfo {
  readonly dataset: string;
  /** Trained depth L: blocks per section. */
  readonly depth: number;
  readonly seed: number;
  /** Test error of this network as a fraction in [0, 1], or null when unknown. */
  readonly testError: number | null;
}

/** Per-block statistics of one run. One row per (dataset, depth, seed, section, block). */
export const BlockStatsRowSchema = Schema.Struct({
  dataset: Utf8,
  /** Trained depth L (blocks per section). */
  depth: Int32,
  seed: Int32,
  /** Section index 0, 1 or 2. */
  section: Int32,
  /** Block index within the section, 0..L-1. */
  block: Int32,
  /** Relative position block / (L - 1) in the section, in [0, 1]; 0 when L = 1. */
  position: Double,
  /** Number of probe rows (images) seen for this block. */
  images: Int32,
  /** Images with ||x_l|| = 0, left out of the scaled statistics. */
  zeroNormImages: Int32,
  /** Images whose cosine was undefined, left out of the cosine statistics. */
  undefinedCosineImages: Int32,
  /** Mean over images of ||x_{l+1} - x_l||. */
  absMean: Double,
  /** Sample std over images of ||x_{l+1} - x_l||; null with fewer than 2 images. */
  absStd: Schema.NullOr(Double),
  /** Mean over images of the scaled perturbation; null when every image had ||x_l|| = 0. */
  scaledMean: Schema.NullOr(Double),
  /** Sample std of the scaled perturbation; null with fewer than 2 defined values. */
  scaledStd: Schema.NullOr(Double),
  /** Mean over images of cos(x_l, x_{l+1}); null when undefined for every image. */
  cosineMean: Schema.NullOr(Double),
  /** Sample std of the cosine; null with fewer than 2 defined values. */
  cosineStd: Schema.NullOr(Double),
});
export type BlockStatsRow = typeof BlockStatsRowSchema.Type;

/**
 * Per-section distances of one run, plus one whole-network row (section = -1).
 * One row per (dataset, depth, seed, section).
 */
export const SectionStatsRowSchema = Schema.Struct({
  dataset: Utf8,
  /** Trained depth L (blocks per section). */
  depth: Int32,
  seed: Int32,
  /** Section index 0, 1, 2, or -1 for the whole network. */
  section: Int32,
  /** Blocks summed over: L for a section, 3L for the network. */
  blocks: Int32,
  /** Images per block (the same for every block of a run). */
  images: Int32,
  /** Zero-norm images left out, summed over the blocks. */
  zeroNormImages: Int32,
  /** Computational distance d: sum over blocks of the mean abs perturbation. */
  distance: Double,
  /** Scaled distance d_scaled: sum over blocks of the mean scaled perturbation; null if some block has none. */
  scaledDistance: Schema.NullOr(Double),
  /** Mean perturbation d / blocks. */
  meanPerturbation: Double,
  /** Mean scaled perturbation d_scaled / blocks; null with scaledDistance. */
  meanScaledPerturbation: Schema.NullOr(Double),
  /** Test error of the run (repeated on each of its rows), or null when unknown. */
  testError: Schema.NullOr(Double),
});
export type SectionStatsRow = typeof SectionStatsRowSchema.Type;

/** The tables aggregated from one run. */
export interface RunAggregate {
  readonly blocks: readonly BlockStatsRow[];
  readonly sections: readonly SectionStatsRow[];
}

/** Moments of one block, accumulated in a stream. */
interface BlockAccumulator {
  readonly abs: RunningMoments;
  readonly scaled: RunningMoments;
  readonly cosine: RunningMoments;
  zeroNormImages: number;
  undefinedCosineImages: number;
}

function isInteger(value: number, lowInclusive: number, highExclusive: number): boolean {
  return Number.isInteger(value) && value >= lowInclusive && value < highExclusive;
}

/**
 * Streaming aggregator for the probe rows of one run: `add(row)` each row, then `finish()`.
 * Memory is O(blocks), independent of the number of images.
 */
export class RunAccumulator {
  private readonly blockAccumulators: BlockAccumulator[];

  constructor(readonly run: RunInfo) {
    if (!isInteger(run.depth, 1, Number.MAX_SAFE_INTEGER))
      throw new RangeError(`depth must be a positive integer, got ${run.depth}`);
    this.blockAccumulators = Array.from({ length: SECTION_COUNT * run.depth }, () => ({
      abs: new RunningMoments(),
      scaled: new RunningMoments(),
      cosine: new RunningMoments(),
      zeroNormImages: 0,
      undefinedCosineImages: 0,
    }));
  }

  add(row: ProbeMeasurement): void {
    const { depth } = this.run;
    if (!isInteger(row.section, 0, SECTION_COUNT)) throw new RangeError(`section must be 0..2, got ${row.section}`);
    if (!isInteger(row.block, 0, depth))
      throw new RangeError(`block must be 0..${depth - 1} for depth ${depth}, got ${row.block}`);
    if (!(Number.isFinite(row.abs) && row.abs >= 0))
      throw new RangeError(`abs must be finite and >= 0, got ${row.abs}`);
    if (row.scaled !== null && !(Number.isFinite(row.scaled) && row.scaled >= 0)) {
      throw new RangeError(`scaled must be null or finite and >= 0, got ${row.scaled}`);
    }
    if (row.cosine !== null && !Number.isFinite(row.cosine))
      throw new RangeError(`cosine must be null or finite, got ${row.cosine}`);
    const accumulator = this.blockAccumulators[row.section * depth + row.block]!;
    accumulator.abs.add(row.abs);
    if (row.scaled === null) accumulator.zeroNormImages += 1;
    else accumulator.scaled.add(row.scaled);
    if (row.cosine === null) accumulator.undefinedCosineImages += 1;
    else accumulator.cosine.add(row.cosine);
  }

  /** Block, section and network rows. Throws when a block has no rows or blocks saw different image counts. */
  finish(): RunAggregate {
    const { dataset, depth, seed, testError } = this.run;
    const images = this.blockAccumulators[0]!.abs.count;
    const blocks: BlockStatsRow[] = [];
    for (let section = 0; section < SECTION_COUNT; section++) {
      for (let block = 0; block < depth; block++) {
        const accumulator = this.blockAccumulators[section * depth + block]!;
        const absMean = accumulator.abs.mean();
        if (absMean === null)
          throw new Error(`run ${describeRun(this.run)}: no probe rows for section ${section} block ${block}`);
        if (accumulator.abs.count !== images) {
          throw new Error(
            `run ${describeRun(this.run)}: section ${section} block ${block} has ${accumulator.abs.count} images, block 0 of section 0 has ${images}`,
          );
        }
        blocks.push({
          dataset,
          depth,
          seed,
          section,
          block,
          position: depth === 1 ? 0 : block / (depth - 1),
          images,
          zeroNormImages: accumulator.zeroNormImages,
          undefinedCosineImages: accumulator.undefinedCosineImages,
          absMean,
          absStd: accumulator.abs.sampleStd(),
          scaledMean: accumulator.scaled.mean(),
          scaledStd: accumulator.scaled.sampleStd(),
          cosineMean: accumulator.cosine.mean(),
          cosineStd: accumulator.cosine.sampleStd(),
        });
      }
    }
    const sectionRow = (section: number, members: readonly BlockStatsRow[]): SectionStatsRow => {
      let distance = 0;
      let scaledDistance: number | null = 0;
      let zeroNormImages = 0;
      for (const b of members) {
        distance += b.absMean;
        scaledDistance = scaledDistance === null || b.scaledMean === null ? null : scaledDistance + b.scaledMean;
        zeroNormImages += b.zeroNormImages;
      }
      return {
        dataset,
        depth,
        seed,
        section,
        blocks: members.length,
        images,
        zeroNormImages,
        distance,
        scaledDistance,
        meanPerturbation: distance / members.length,
        meanScaledPerturbation: scaledDistance === null ? null : scaledDistance / members.length,
        testError,
      };
    };
    const sections: SectionStatsRow[] = [];
    for (let section = 0; section < SECTION_COUNT; section++) {
      sections.push(sectionRow(section, blocks.slice(section * depth, (section + 1) * depth)));
    }
    // Network totals: sums over the three sections, taken as sums over all 3L block means.
    sections.push(sectionRow(NETWORK_SECTION, blocks));
    return { blocks, sections };
  }
}

function describeRun(run: RunInfo): string {
  return `${run.dataset} depth=${run.depth} seed=${run.seed}`;
}

/** Aggregate one run from any iterable of its probe rows (streamed, not stored). */
export function aggregateRun(run: RunInfo, rows: Iterable<ProbeMeasurement>): RunAggregate {
  const accumulator = new RunAccumulator(run);
  for (const row of rows) accumulator.add(row);
  return accumulator.finish();
}

/**
 * Section distances summarised across seeds. One row per (dataset, depth, section).
 * Value columns are the mean over seeds of the per-seed value (null if any seed's value is null);
 * `*SeedStd` columns are the sample std over seeds (null with one seed).
 */
export const SectionSeedSummaryRowSchema = Schema.Struct({
  dataset: Utf8,
  depth: Int32,
  /** Section 0, 1, 2, or -1 for the whole network. */
  section: Int32,
  /** Blocks summed over: L for a section, 3L for the network. */
  blocks: Int32,
  /** Number of seeds (runs) summarised. */
  seeds: Int32,
  /** Mean over seeds of the computational distance d. */
  distance: Double,
  distanceSeedStd: Schema.NullOr(Double),
  /** Mean over seeds of the scaled distance d_scaled. */
  scaledDistance: Schema.NullOr(Double),
  scaledDistanceSeedStd: Schema.NullOr(Double),
  /** Mean over seeds of d / blocks. */
  meanPerturbation: Double,
  meanPerturbationSeedStd: Schema.NullOr(Double),
  /** Mean over seeds of d_scaled / blocks. */
  meanScaledPerturbation: Schema.NullOr(Double),
  meanScaledPerturbationSeedStd: Schema.NullOr(Double),
  /** Mean over seeds of the test error. */
  testError: Schema.NullOr(Double),
  testErrorSeedStd: Schema.NullOr(Double),
});
export type SectionSeedSummaryRow = typeof SectionSeedSummaryRowSchema.Type;

/**
 * Per-block means summarised across seeds. One row per (dataset, depth, section, block).
 * Value columns are the mean over seeds of the per-seed block mean (null if any is null);
 * `*SeedStd` columns are the sample std over seeds (null with one seed).
 */
export const BlockSeedSummaryRowSchema = Schema.Struct({
  dataset: Utf8,
  depth: Int32,
  section: Int32,
  block: Int32,
  /** block / (L - 1); 0 when L = 1. */
  position: Double,
  /** Number of seeds (runs) summarised. */
  seeds: Int32,
  absMean: Double,
  absMeanSeedStd: Schema.NullOr(Double),
  scaledMean: Schema.NullOr(Double),
  scaledMeanSeedStd: Schema.NullOr(Double),
  cosineMean: Schema.NullOr(Double),
  cosineMeanSeedStd: Schema.NullOr(Double),
});
export type BlockSeedSummaryRow = typeof BlockSeedSummaryRowSchema.Type;

/** Mean and sample std over seeds; both null when any seed's value is null. */
function acrossSeeds(values: readonly (number | null)[]): { mean: number | null; std: number | null } {
  if (values.some((v) => v === null)) return { mean: null, std: null };
  return meanAndSampleStd(values as readonly number[]);
}

/** Groups rows by a key, keeping first-seen order, and refuses two rows of the same seed in a group. */
function groupBySeeds<Row extends { readonly seed: number }>(rows: readonly Row[], key: (row: Row) => string): Row[][] {
  const groups = new Map<string, Row[]>();
  for (const row of rows) {
    const k = key(row);
    const group = groups.get(k);
    if (group === undefined) groups.set(k, [row]);
    else {
      if (group.some((r) => r.seed === row.seed)) throw new Error(`duplicate seed ${row.seed} for ${k}`);
      group.push(row);
    }
  }
  return [...groups.values()];
}

/** Mean and sample std over seeds of each section's distances, per (dataset, depth, section). */
export function summarizeSectionsAcrossSeeds(rows: readonly SectionStatsRow[]): SectionSeedSummaryRow[] {
  return groupBySeeds(rows, (r) => JSON.stringify([r.dataset, r.depth, r.section])).map((group) => {
    const first = group[0]!;
    const distance = acrossSeeds(group.map((r) => r.distance));
    const scaledDistance = acrossSeeds(group.map((r) => r.scaledDistance));
    const meanPerturbation = acrossSeeds(group.map((r) => r.meanPerturbation));
    const meanScaledPerturbation = acrossSeeds(group.map((r) => r.meanScaledPerturbation));
    const testError = acrossSeeds(group.map((r) => r.testError));
    return {
      dataset: first.dataset,
      depth: first.depth,
      section: first.section,
      blocks: first.blocks,
      seeds: group.length,
      distance: distance.mean!,
      distanceSeedStd: distance.std,
      scaledDistance: scaledDistance.mean,
      scaledDistanceSeedStd: scaledDistance.std,
      meanPerturbation: meanPerturbation.mean!,
      meanPerturbationSeedStd: meanPerturbation.std,
      meanScaledPerturbation: meanScaledPerturbation.mean,
      meanScaledPerturbationSeedStd: meanScaledPerturbation.std,
      testError: testError.mean,
      testErrorSeedStd: testError.std,
    };
  });
}

/** Mean and sample std over seeds of each block's means, per (dataset, depth, section, block). */
export function summarizeBlocksAcrossSeeds(rows: readonly BlockStatsRow[]): BlockSeedSummaryRow[] {
  return groupBySeeds(rows, (r) => JSON.stringify([r.dataset, r.depth, r.section, r.block])).map((group) => {
    const first = group[0]!;
    const abs = acrossSeeds(group.map((r) => r.absMean));
    const scaled = acrossSeeds(group.map((r) => r.scaledMean));
    const cosine = acrossSeeds(group.map((r) => r.cosineMean));
    return {
      dataset: first.dataset,
      depth: first.depth,
      section: first.section,
      block: first.block,
      position: first.position,
      seeds: group.length,
      absMean: abs.mean!,
      absMeanSeedStd: abs.std,
      scaledMean: scaled.mean,
      scaledMeanSeedStd: scaled.std,
      cosineMean: cosine.mean,
      cosineMeanSeedStd: cosine.std,
    };
  });
}

/** All aggregate tables: per seed, and across seeds (computed even for one seed, with null stds). */
export interface AggregateTables {
  readonly blocks: readonly BlockStatsRow[];
  readonly sections: readonly SectionStatsRow[];
  readonly blocksAcrossSeeds: readonly BlockSeedSummaryRow[];
  readonly sectionsAcrossSeeds: readonly SectionSeedSummaryRow[];
}

/** Combine finished runs (several depths, datasets and seeds) into the aggregate tables. */
export function combineRuns(runs: Iterable<RunAggregate>): AggregateTables {
  const blocks: BlockStatsRow[] = [];
  const sections: SectionStatsRow[] = [];
  for (const run of runs) {
    for (const row of run.blocks) blocks.push(row);
    for (const row of run.sections) sections.push(row);
  }
  return {
    blocks,
    sections,
    blocksAcrossSeeds: summarizeBlocksAcrossSeeds(blocks),
    sectionsAcrossSeeds: summarizeSectionsAcrossSeeds(sections),
  };
}

/** Aggregate several runs, each given with an iterable of its probe rows. */
export function aggregateRuns(
  runs: Iterable<{ readonly run: RunInfo; readonly rows: Iterable<ProbeMeasurement> }>,
): AggregateTables {
  const finished: RunAggregate[] = [];
  for (const { run, rows } of runs) finished.push(aggregateRun(run, rows));
  return combineRuns(finished);
}
