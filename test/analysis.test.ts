import { describe, expect, it } from "vitest";
import {
  NETWORK_SECTION,
  PAPER_STOP_RULE,
  RunAccumulator,
  aggregateRun,
  aggregateRuns,
  ceilWithTolerance,
  distanceSaturationDepth,
  empiricalDepth,
  fitCurve,
  fitCurves,
  logGamma,
  ordinaryLeastSquares,
  paperReference,
  predictedDepth,
  regularizedIncompleteBeta,
  stopRule,
  studentTCdf,
  studentTQuantile,
  summarizeSectionsAcrossSeeds,
  type CurvePoint,
  type ProbeMeasurement,
  type RunInfo,
  type SectionStatsRow,
} from "../science/analysis.ts";

/** Deterministic uniform [0, 1) generator (mulberry32) so the tests are reproducible. */
function randomSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function expectRelativelyClose(actual: number | null, expected: number, relative = 1e-12): void {
  expect(actual).not.toBeNull();
  expect(Math.abs(actual! - expected)).toBeLessThanOrEqual(relative * Math.max(1, Math.abs(expected)));
}

describe("Student t distribution", () => {
  it("matches printed t-table quantiles t_{0.975, df}", () => {
    const table: [number, number][] = [
      [1, 12.706],
      [2, 4.303],
      [3, 3.182],
      [5, 2.571],
      [10, 2.228],
      [30, 2.042],
      [120, 1.98],
    ];
    for (const [df, expected] of table) expect(studentTQuantile(0.975, df)).toBeCloseTo(expected, 3);
  });

  it("tends to the normal quantile 1.960 for large df", () => {
    expect(studentTQuantile(0.975, 1e6)).toBeCloseTo(1.96, 3);
    expect(Math.abs(studentTQuantile(0.975, 1e6) - 1.959964)).toBeLessThan(1e-5);
  });

  it("agrees with the closed forms for df 1 (Cauchy) and df 2", () => {
    for (const p of [0.6, 0.9, 0.975, 0.995, 0.05]) {
      expectRelativelyClose(studentTQuantile(p, 1), Math.tan(Math.PI * (p - 0.5)), 1e-11);
      expectRelativelyClose(studentTQuantile(p, 2), (2 * p - 1) / Math.sqrt(2 * p * (1 - p)), 1e-11);
    }
  });

  it("is symmetric and inverts the CDF", () => {
    expect(studentTQuantile(0.5, 7)).toBe(0);
    expect(studentTQuantile(0.025, 7)).toBeCloseTo(-studentTQuantile(0.975, 7), 12);
    for (const df of [1, 3.5, 8, 40]) {
      for (const p of [0.01, 0.3, 0.8, 0.999]) expect(studentTCdf(studentTQuantile(p, df), df)).toBeCloseTo(p, 12);
    }
    expect(studentTCdf(1, 1)).toBeCloseTo(0.75, 14); // Cauchy: 1/2 + atan(1)/pi
  });

  it("rests on a correct log-gamma and incomplete beta", () => {
    expect(logGamma(10)).toBeCloseTo(Math.log(362880), 12);
    expect(logGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 12);
    expect(regularizedIncompleteBeta(0.3, 1, 1)).toBeCloseTo(0.3, 14);
    expect(regularizedIncompleteBeta(0.3, 2.5, 1)).toBeCloseTo(Math.pow(0.3, 2.5), 14);
    expect(regularizedIncompleteBeta(0.5, 7, 7)).toBeCloseTo(0.5, 14);
    // I_x(1, b) = 1 - (1 - x)^b
    expect(regularizedIncompleteBeta(0.8, 1, 3)).toBeCloseTo(1 - 0.2 ** 3, 14);
  });

  it("rejects arguments outside the domain", () => {
    expect(() => studentTQuantile(1, 3)).toThrow(RangeError);
    expect(() => studentTQuantile(0.9, 0)).toThrow(RangeError);
  });
});

describe("ordinary least squares", () => {
  it("reproduces a hand-worked example", () => {
    // x = 1..5, y = 2,4,5,4,5: slope 0.6, intercept 2.2, RSS 2.4, s^2 = 0.8, Sxx = 10, SST = 6.
    const fit = ordinaryLeastSquares([1, 2, 3, 4, 5], [2, 4, 5, 4, 5])!;
    expect(fit.slope).toBeCloseTo(0.6, 14);
    expect(fit.intercept).toBeCloseTo(2.2, 14);
    expect(fit.slopeStdError).toBeCloseTo(Math.sqrt(0.08), 14);
    expect(fit.interceptStdError).toBeCloseTo(Math.sqrt(0.8 * (1 / 5 + 9 / 10)), 14);
    expect(fit.rSquared).toBeCloseTo(0.6, 14);
    expect(fit.degreesOfFreedom).toBe(3);
  });

  it("returns null when the slope is not identifiable and null errors without residual df", () => {
    expect(ordinaryLeastSquares([1], [1])).toBeNull();
    expect(ordinaryLeastSquares([2, 2, 2], [1, 2, 3])).toBeNull();
    const two = ordinaryLeastSquares([1, 3], [1, 5])!;
    expect(two.slope).toBeCloseTo(2, 14);
    expect(two.slopeStdError).toBeNull();
  });
});

describe("ceil with tolerance and predicted depth", () => {
  it("does not let float error push an exact ratio up", () => {
    // A d_scaled of 3.0 that arrives one ulp high (as sums of block means do) divides to 30.000000000000004.
    const threeOneUlpHigh = 3 + 2 * Number.EPSILON;
    expect(threeOneUlpHigh / 0.1).toBeGreaterThan(30);
    expect(Math.ceil(threeOneUlpHigh / 0.1)).toBe(31); // the trap
    expect(ceilWithTolerance(threeOneUlpHigh / 0.1)).toBe(30);
    expect(predictedDepth(threeOneUlpHigh, 0.1)).toBe(30);
    expect(predictedDepth(3.0, 0.1)).toBe(30);
    expect((0.1 + 0.2) / 0.1).toBeGreaterThan(3);
    expect(predictedDepth(0.1 + 0.2, 0.1)).toBe(3);
    expect(0.3 / 0.1).toBeLessThan(3); // 2.9999999999999996
    expect(predictedDepth(0.3, 0.1)).toBe(3);
    expect(predictedDepth(0.7, 0.1)).toBe(7);
  });

  it("still rounds genuine fractions up", () => {
    expect(predictedDepth(3.01, 0.1)).toBe(31);
    expect(predictedDepth(3.0001, 0.1)).toBe(31);
    expect(ceilWithTolerance(30.5)).toBe(31);
    expect(ceilWithTolerance(-2.5)).toBe(-2);
    expect(predictedDepth(6, 0.1, 3)).toBe(20); // whole network: 3L blocks
  });

  it("computes the paper's predicted depths from its d_scaled", () => {
    // By hand: 41.1 -> 42, 31.2 -> 32, 45.8 -> 46; 36.9 -> 37, 38.1 -> 39, 42.7 -> 43.
    expect(PAPER_STOP_RULE.mnist.scaledDistance.map((d) => predictedDepth(d, 0.1))).toEqual([42, 32, 46]);
    expect(PAPER_STOP_RULE.cifar10.scaledDistance.map((d) => predictedDepth(d, 0.1))).toEqual([37, 39, 43]);
    expect(paperReference("CIFAR-10")?.empiricalDepth).toEqual([34, 38, 48]);
    expect(paperReference("MNIST")?.empiricalDepth).toEqual([40, 32, 40]);
    expect(paperReference("svhn")).toBeNull();
  });
});

/** Random probe rows for one run, in shuffled order, with some zero-norm and undefined-cosine images. */
function randomProbeRows(depth: number, images: number, random: () => number): ProbeMeasurement[] {
  const rows: ProbeMeasurement[] = [];
  for (let section = 0; section < 3; section++) {
    for (let block = 0; block < depth; block++) {
      for (let image = 0; image < images; image++) {
        const zeroNorm = random() < 0.1;
        rows.push({
          section,
          block,
          image,
          abs: 10 * random() + section,
          scaled: zeroNorm ? null : random() / (block + 1),
          cosine: zeroNorm || random() < 0.05 ? null : 1 - 0.2 * random(),
        });
      }
    }
  }
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [rows[i], rows[j]] = [rows[j]!, rows[i]!];
  }
  return rows;
}

/** Slow reference: two-pass mean and sample std of the non-null values. */
function directMoments(values: readonly (number | null)[]): { mean: number | null; std: number | null; left: number } {
  const kept = values.filter((v): v is number => v !== null);
  if (kept.length === 0) return { mean: null, std: null, left: values.length };
  const mean = kept.reduce((a, b) => a + b, 0) / kept.length;
  const std = kept.length < 2 ? null : Math.sqrt(kept.reduce((a, v) => a + (v - mean) ** 2, 0) / (kept.length - 1));
  return { mean, std, left: values.length - kept.length };
}

describe("aggregate", () => {
  it("matches a slow direct computation on random rows", () => {
    const random = randomSource(42);
    const depth = 4;
    const run: RunInfo = { dataset: "mnist", depth, seed: 7, testError: 0.012 };
    const rows = randomProbeRows(depth, 50, random);
    const { blocks, sections } = aggregateRun(run, rows);
    expect(blocks).toHaveLength(3 * depth);
    const expectedSectionDistance = [0, 0, 0];
    const expectedSectionScaled = [0, 0, 0];
    for (const row of blocks) {
      const mine = rows.filter((r) => r.section === row.section && r.block === row.block);
      const abs = directMoments(mine.map((r) => r.abs));
      const scaled = directMoments(mine.map((r) => r.scaled));
      const cosine = directMoments(mine.map((r) => r.cosine));
      expect(row.images).toBe(50);
      expect(row.zeroNormImages).toBe(scaled.left);
      expect(row.undefinedCosineImages).toBe(cosine.left);
      expectRelativelyClose(row.absMean, abs.mean!);
      expectRelativelyClose(row.absStd, abs.std!);
      expectRelativelyClose(row.scaledMean, scaled.mean!);
      expectRelativelyClose(row.scaledStd, scaled.std!);
      expectRelativelyClose(row.cosineMean, cosine.mean!);
      expectRelativelyClose(row.cosineStd, cosine.std!);
      expect(row.position).toBe(row.block / (depth - 1));
      expectedSectionDistance[row.section]! += abs.mean!;
      expectedSectionScaled[row.section]! += scaled.mean!;
    }
    expect(sections.map((s) => s.section)).toEqual([0, 1, 2, NETWORK_SECTION]);
    for (const s of sections.slice(0, 3)) {
      expect(s.blocks).toBe(depth);
      expectRelativelyClose(s.distance, expectedSectionDistance[s.section]!);
      expectRelativelyClose(s.scaledDistance, expectedSectionScaled[s.section]!);
      expectRelativelyClose(s.meanPerturbation, expectedSectionDistance[s.section]! / depth);
      expectRelativelyClose(s.meanScaledPerturbation, expectedSectionScaled[s.section]! / depth);
      expect(s.testError).toBe(0.012);
    }
    const network = sections[3]!;
    const totalDistance = expectedSectionDistance.reduce((a, b) => a + b, 0);
    const totalScaled = expectedSectionScaled.reduce((a, b) => a + b, 0);
    expect(network.blocks).toBe(3 * depth);
    expectRelativelyClose(network.distance, totalDistance);
    expectRelativelyClose(network.scaledDistance, totalScaled);
    expectRelativelyClose(network.meanPerturbation, totalDistance / (3 * depth));
    expectRelativelyClose(network.meanScaledPerturbation, totalScaled / (3 * depth));
    expect(network.zeroNormImages).toBe(rows.filter((r) => r.scaled === null).length);
  });

  it("counts zero-norm images instead of producing NaN", () => {
    const accumulator = new RunAccumulator({ dataset: "cifar10", depth: 1, seed: 0, testError: null });
    for (let section = 0; section < 3; section++) {
      accumulator.add({ section, block: 0, image: 0, abs: 0, scaled: null, cosine: null });
      accumulator.add({ section, block: 0, image: 1, abs: 2, scaled: section === 2 ? null : 0.5, cosine: 0.9 });
      accumulator.add({ section, block: 0, image: 2, abs: 4, scaled: section === 2 ? null : 1.5, cosine: 0.7 });
    }
    const { blocks, sections } = accumulator.finish();
    const first = blocks[0]!;
    expect(first.position).toBe(0); // L = 1
    expect(first.zeroNormImages).toBe(1);
    expect(first.undefinedCosineImages).toBe(1);
    expect(first.absMean).toBe(2);
    expect(first.scaledMean).toBe(1);
    expect(first.scaledStd).toBeCloseTo(Math.SQRT1_2, 14);
    expect(first.cosineMean).toBeCloseTo(0.8, 14);
    const allZero = blocks[2]!;
    expect(allZero.zeroNormImages).toBe(3);
    expect(allZero.scaledMean).toBeNull();
    expect(allZero.scaledStd).toBeNull();
    expect(sections[0]!.scaledDistance).toBe(1);
    expect(sections[2]!.scaledDistance).toBeNull();
    expect(sections[2]!.meanScaledPerturbation).toBeNull();
    expect(sections[3]!.scaledDistance).toBeNull();
    expect(sections[3]!.zeroNormImages).toBe(5);
    for (const row of [...blocks, ...sections]) {
      for (const value of Object.values(row)) if (typeof value === "number") expect(Number.isNaN(value)).toBe(false);
    }
  });

  it("refuses malformed input", () => {
    const run: RunInfo = { dataset: "mnist", depth: 2, seed: 0, testError: null };
    const good: ProbeMeasurement = { section: 0, block: 0, image: 0, abs: 1, scaled: 0.1, cosine: 0.9 };
    expect(() => new RunAccumulator(run).add({ ...good, section: 3 })).toThrow(RangeError);
    expect(() => new RunAccumulator(run).add({ ...good, block: 2 })).toThrow(RangeError);
    expect(() => new RunAccumulator(run).add({ ...good, abs: Number.NaN })).toThrow(RangeError);
    expect(() => new RunAccumulator(run).add({ ...good, scaled: -1 })).toThrow(RangeError);
    // A missing block.
    expect(() => aggregateRun(run, [good])).toThrow(/no probe rows/);
    // Blocks with different image counts.
    const rows = randomProbeRows(2, 3, randomSource(1));
    expect(() => aggregateRun(run, [...rows, good])).toThrow(/images/);
  });

  it("summarises seeds with the mean and sample std across seeds", () => {
    const random = randomSource(9);
    const runs = [3, 5].flatMap((depth) =>
      [0, 1, 2].map((seed) => ({
        run: { dataset: "mnist", depth, seed, testError: 0.01 * (seed + 1) },
        rows: randomProbeRows(depth, 6, random),
      })),
    );
    const tables = aggregateRuns(runs);
    expect(tables.sections).toHaveLength(6 * 4);
    expect(tables.sectionsAcrossSeeds).toHaveLength(2 * 4);
    expect(tables.blocksAcrossSeeds).toHaveLength(3 * 3 + 3 * 5);
    for (const summary of tables.sectionsAcrossSeeds) {
      const perSeed = tables.sections.filter((s) => s.depth === summary.depth && s.section === summary.section);
      expect(summary.seeds).toBe(3);
      const d = directMoments(perSeed.map((s) => s.distance));
      expectRelativelyClose(summary.distance, d.mean!);
      expectRelativelyClose(summary.distanceSeedStd, d.std!);
      const m = directMoments(perSeed.map((s) => s.meanScaledPerturbation));
      expectRelativelyClose(summary.meanScaledPerturbation, m.mean!);
      expectRelativelyClose(summary.meanScaledPerturbationSeedStd, m.std!);
      expectRelativelyClose(summary.testError, 0.02);
      expectRelativelyClose(summary.testErrorSeedStd, 0.01);
    }
    for (const summary of tables.blocksAcrossSeeds) {
      const perSeed = tables.blocks.filter(
        (b) => b.depth === summary.depth && b.section === summary.section && b.block === summary.block,
      );
      const abs = directMoments(perSeed.map((b) => b.absMean));
      expectRelativelyClose(summary.absMean, abs.mean!);
      expectRelativelyClose(summary.absMeanSeedStd, abs.std!);
    }
    // One seed: the summary carries the value and no std.
    const single = summarizeSectionsAcrossSeeds(tables.sections.filter((s) => s.seed === 0));
    expect(single.every((s) => s.seeds === 1 && s.distanceSeedStd === null && s.testErrorSeedStd === null)).toBe(true);
    // The same seed twice for one depth is a bug upstream.
    expect(() => summarizeSectionsAcrossSeeds([tables.sections[0]!, tables.sections[0]!])).toThrow(/duplicate seed/);
  });
});

/**
 * Probe rows of a run whose section s has mean scaled perturbation exactly c_s / L:
 * block l of L has mean scaled c_s * w_l with weights w_l summing to 1, spread over 4 images.
 */
function inverseDepthRun(depth: number, constants: readonly number[]): ProbeMeasurement[] {
  const spread = [-0.1, 0.1, -0.05, 0.05];
  const weightTotal = (depth * (depth + 1)) / 2;
  const rows: ProbeMeasurement[] = [];
  constants.forEach((c, section) => {
    for (let block = 0; block < depth; block++) {
      const blockMean = (c * (block + 1)) / weightTotal;
      spread.forEach((delta, image) => {
        rows.push({
          section,
          block,
          image,
          abs: 2 * blockMean * (1 + delta),
          scaled: blockMean * (1 + delta),
          cosine: 0.99,
        });
      });
    }
  });
  return rows;
}

describe("fit and stop rule on an exact 1/L law", () => {
  const depths = [2, 4, 8, 16, 32, 64];
  const constants = [4, 3, 5];
  const tables = aggregateRuns(
    depths.map((depth) => ({
      run: { dataset: "MNIST", depth, seed: 0, testError: 0.01 },
      rows: inverseDepthRun(depth, constants),
    })),
  );
  const fits = fitCurves(tables.sectionsAcrossSeeds);

  it("finds slope -1 and d_scaled = c with both estimators", () => {
    expect(fits.map((f) => f.section)).toEqual([0, 1, 2, NETWORK_SECTION]);
    const expectedScaled = [...constants, constants.reduce((a, b) => a + b, 0)];
    fits.forEach((fit, i) => {
      expect(fit.seed).toBeNull();
      expect(fit.depths).toBe(depths.length);
      expectRelativelyClose(fit.slope, -1, 1e-12);
      expect(fit.rSquared).toBeCloseTo(1, 12);
      expect(fit.slopeStdError!).toBeLessThan(1e-12);
      expect(fit.slopeCiLow!).toBeLessThanOrEqual(-1 + 1e-12);
      expect(fit.slopeCiHigh!).toBeGreaterThanOrEqual(-1 - 1e-12);
      expectRelativelyClose(fit.tQuantile, studentTQuantile(0.975, depths.length - 2));
      expectRelativelyClose(fit.scaledDistanceFixedSlope, expectedScaled[i]!);
      expectRelativelyClose(fit.scaledDistanceSaturated, expectedScaled[i]!);
      expect(fit.saturatedDepths).toBe(2); // deepest third of 6 depths
      // d = 2 d_scaled at every depth, so it is saturated from the shallowest depth.
      expect(fit.distanceSaturationDepth).toBe(2);
      expectRelativelyClose(fit.distanceAtDeepest, 2 * expectedScaled[i]!);
    });
    // Section fits: exp(intercept) with slope -1 is c itself.
    expectRelativelyClose(Math.exp(fits[1]!.intercept!), 3, 1e-12);
  });

  it("predicts ceil(c / eps) and finds the smallest trained depth below eps", () => {
    const rows = stopRule(fits, tables.sectionsAcrossSeeds);
    expect(rows.map((r) => r.estimator)).toEqual(["saturated", "saturated", "saturated", "saturated"]);
    // Predicted: 4/0.1 = 40, 3/0.1 = 30 (not 31), 5/0.1 = 50; network 12/(3 * 0.1) = 40.
    expect(rows.map((r) => r.predictedDepth)).toEqual([40, 30, 50, 40]);
    // Empirical: c/L < 0.1 first at L = 64 (4/32 = 0.125), 32 (3/32 = 0.094), 64 (5/32 = 0.156); network 4/L -> 64.
    expect(rows.map((r) => r.empiricalDepth)).toEqual([64, 32, 64, 64]);
    expect(rows.map((r) => r.paperScaledDistance)).toEqual([4.11, 3.12, 4.58, null]);
    expect(rows.map((r) => r.paperPredictedDepth)).toEqual([42, 32, 46, null]);
    expect(rows.map((r) => r.paperEmpiricalDepth)).toEqual([40, 32, 40, null]);
    expect(rows.every((r) => r.maxTrainedDepth === 64 && r.minTrainedDepth === 2 && r.epsilon === 0.1)).toBe(true);
    const coarse = stopRule(fits, tables.sectionsAcrossSeeds, { epsilon: 0.01, estimator: "fixedSlope" });
    expect(coarse.map((r) => r.predictedDepth)).toEqual([400, 300, 500, 400]);
    expect(coarse.map((r) => r.empiricalDepth)).toEqual([null, null, null, null]);
    expect(coarse[0]!.estimator).toBe("fixedSlope");
  });

  it("fits per seed when given per-seed rows", () => {
    const perSeed = fitCurves(tables.sections);
    expect(perSeed.map((f) => f.seed)).toEqual([0, 0, 0, 0]);
    expectRelativelyClose(perSeed[2]!.slope, -1, 1e-12);
  });
});

/** A curve point of section 0 with the given depth, distance and scaled distance. */
function point(depth: number, scaledDistance: number | null, distance = 1): CurvePoint {
  return {
    dataset: "cifar10",
    section: 0,
    depth,
    blocks: depth,
    distance,
    scaledDistance,
    meanScaledPerturbation: scaledDistance === null ? null : scaledDistance / depth,
  };
}

describe("fit of a power law with exponent -0.5", () => {
  const depths = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64];

  it("recovers the exponent exactly without noise", () => {
    // mean scaled perturbation = 2 L^-0.5, i.e. d_scaled = 2 sqrt(L).
    const fit = fitCurve(depths.map((L) => point(L, 2 * Math.sqrt(L))));
    expectRelativelyClose(fit.slope, -0.5, 1e-12);
    expectRelativelyClose(fit.intercept, Math.log(2), 1e-12);
    // Geometric mean of 2 sqrt(L) over the depths.
    const geometric = Math.exp(depths.reduce((a, L) => a + Math.log(2 * Math.sqrt(L)), 0) / depths.length);
    expectRelativelyClose(fit.scaledDistanceFixedSlope, geometric);
    // Deepest third of 12 depths: 24, 32, 48, 64.
    expect(fit.saturatedDepths).toBe(4);
    expectRelativelyClose(fit.scaledDistanceSaturated, (2 * (Math.sqrt(24) + Math.sqrt(32) + Math.sqrt(48) + 8)) / 4);
  });

  it("gives a confidence interval of positive width containing -0.5 under noise", () => {
    const random = randomSource(2024);
    const noisy = depths.map((L) => point(L, 2 * Math.sqrt(L) * Math.exp(0.1 * (random() - 0.5))));
    const fit = fitCurve(noisy);
    expect(fit.slope).not.toBe(-0.5);
    expect(fit.slopeCiHigh! - fit.slopeCiLow!).toBeGreaterThan(0);
    expect(fit.slopeCiLow!).toBeLessThan(-0.5);
    expect(fit.slopeCiHigh!).toBeGreaterThan(-0.5);
    // df = 12 - 2 = 10: t = 2.228 from the table.
    expect(fit.tQuantile).toBeCloseTo(2.228, 3);
    expectRelativelyClose(fit.slopeCiHigh! - fit.slope!, fit.tQuantile! * fit.slopeStdError!);
    expect(fit.rSquared!).toBeGreaterThan(0.95);
    const wider = fitCurve(noisy, { confidence: 0.99 });
    expect(wider.slopeCiHigh! - wider.slopeCiLow!).toBeGreaterThan(fit.slopeCiHigh! - fit.slopeCiLow!);
  });

  it("leaves out depths without a positive mean scaled perturbation and refuses repeated depths", () => {
    const fit = fitCurve([point(1, 1), point(2, null), point(4, 0), point(8, Math.SQRT2 * 2), point(16, 4)]);
    expect(fit.depths).toBe(3);
    expect(fit.excludedDepths).toBe(2);
    expect(fit.minDepth).toBe(1);
    expect(fit.maxDepth).toBe(16);
    expectRelativelyClose(fit.slope, -0.5, 1e-12);
    expect(() => fitCurve([point(2, 1), point(2, 1)])).toThrow(/twice/);
    const short = fitCurve([point(2, 1), point(4, 1)]);
    expect(short.slope).toBeCloseTo(-1, 12);
    expect(short.slopeStdError).toBeNull();
    expect(short.slopeCiLow).toBeNull();
    expect(short.tQuantile).toBeNull();
  });
});

describe("saturation of the computational distance", () => {
  const curve = (distances: readonly number[]) => distances.map((distance, i) => ({ depth: 2 ** i, distance }));

  it("finds the smallest depth from which d stays within 10% of d at the deepest depth", () => {
    // Deepest d = 4.05: 4.0, 4.1 and 3.8 are within 0.405; 3.0 is not.
    expect(distanceSaturationDepth(curve([1, 2, 3, 3.8, 4.1, 4.0, 4.05]))).toBe(8);
    // A shallow depth that happens to agree does not count once a deeper one breaks the run.
    expect(distanceSaturationDepth(curve([4.0, 1.0, 4.0, 4.0]))).toBe(4);
    // 2%: 4.0 and 4.1 are within 0.081 of 4.05, 3.8 is not.
    expect(distanceSaturationDepth(curve([1, 2, 3, 3.8, 4.1, 4.0, 4.05]), 0.02)).toBe(16);
  });

  it("reports null when d never settles", () => {
    expect(distanceSaturationDepth(curve([1, 2, 4, 8]))).toBeNull();
    expect(distanceSaturationDepth(curve([5]))).toBeNull();
    expect(distanceSaturationDepth([])).toBeNull();
  });

  it("is reported by the fit", () => {
    const fit = fitCurve([point(1, 1, 1), point(2, 1, 2), point(4, 1, 3.8), point(8, 1, 4)]);
    expect(fit.distanceSaturationDepth).toBe(4);
    expect(fit.saturationTolerance).toBe(0.1);
    expect(fitCurve([point(1, 1, 1), point(2, 1, 2)]).distanceSaturationDepth).toBeNull();
  });
});

describe("empirical depth", () => {
  it("is the smallest trained depth strictly below eps, whatever the order", () => {
    const rows = [
      { depth: 32, meanScaledPerturbation: 0.05 },
      { depth: 8, meanScaledPerturbation: 0.2 },
      { depth: 16, meanScaledPerturbation: 0.1 },
      { depth: 24, meanScaledPerturbation: 0.099 },
      { depth: 4, meanScaledPerturbation: null },
    ];
    expect(empiricalDepth(rows, 0.1)).toBe(24);
    expect(empiricalDepth(rows, 0.01)).toBeNull();
    expect(empiricalDepth([], 0.1)).toBeNull();
  });
});

describe("section rows fit the curve shape", () => {
  it("accepts per-seed rows directly", () => {
    const row: SectionStatsRow = {
      dataset: "mnist",
      depth: 4,
      seed: 3,
      section: 1,
      blocks: 4,
      images: 10,
      zeroNormImages: 0,
      distance: 2,
      scaledDistance: 1,
      meanPerturbation: 0.5,
      meanScaledPerturbation: 0.25,
      testError: null,
    };
    const fit = fitCurve([row, { ...row, depth: 8, blocks: 8, meanScaledPerturbation: 0.125 }]);
    expect(fit.seed).toBe(3);
    expect(fit.section).toBe(1);
    expect(fit.slope).toBeCloseTo(-1, 12);
  });
});
