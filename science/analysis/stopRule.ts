/**
 * Stop-rule stage: how deep must a section be for its mean scaled perturbation to fall below eps?
 *
 * From Eq. 11 (mean scaled perturbation ~ d_scaled / L) the predicted depth is ceil(d_scaled / eps).
 * The empirical depth is the smallest trained depth whose measured mean scaled perturbation is below eps.
 * The paper's own numbers are kept here to print beside ours.
 */
import { Schema } from "effect";
import { Double, Int32, Utf8 } from "../../pipeline/table.ts";
import type { CurvePoint, FitRow } from "./fit.ts";
import { ceilWithTolerance } from "./stats.ts";

/** The paper's threshold on the mean scaled perturbation. */
export const PAPER_EPSILON = 0.1;

/** The paper's published stop-rule numbers for one dataset, per section 0, 1, 2. */
export interface PaperStopRuleReference {
  /** d_scaled read off the saturated curves, per section. */
  readonly scaledDistance: readonly [number, number, number];
  /** Smallest trained depth with mean scaled perturbation below eps = 0.1, per section. */
  readonly empiricalDepth: readonly [number, number, number];
}

/**
 * Published values (Hauser 2019). The paper's predicted depths are not stored: they are
 * computed as ceil(scaledDistance / eps) like ours.
 */
export const PAPER_STOP_RULE: Readonly<Record<"mnist" | "cifar10", PaperStopRuleReference>> = {
  mnist: { scaledDistance: [4.11, 3.12, 4.58], empiricalDepth: [40, 32, 40] },
  cifar10: { scaledDistance: [3.69, 3.81, 4.27], empiricalDepth: [34, 38, 48] },
};

/** The paper's reference for a dataset name ("mnist", "MNIST", "cifar10", "CIFAR-10", ...), or null. */
export function paperReference(dataset: string): PaperStopRuleReference | null {
  const key = dataset.toLowerCase().replace(/[^a-z0-9]/g, "");
  return key === "mnist" || key === "cifar10" ? PAPER_STOP_RULE[key] : null;
}

/**
 * Predicted depth ceil(d_scaled / (blocksPerDepth * eps)), forgiving float noise (3.0 / 0.1 gives 30).
 * blocksPerDepth is 1 for a section and 3 for the whole network (3L blocks).
 */
export function predictedDepth(scaledDistance: number, epsilon: number, blocksPerDepth = 1): number {
  if (!(epsilon > 0)) throw new RangeError(`epsilon must be > 0, got ${epsilon}`);
  return ceilWithTolerance(scaledDistance / (blocksPerDepth * epsilon));
}

/** Smallest trained depth whose mean scaled perturbation is strictly below eps; null if none is. */
export function empiricalDepth(
  curve: readonly { readonly depth: number; readonly meanScaledPerturbation: number | null }[],
  epsilon: number,
): number | null {
  let smallest: number | null = null;
  for (const point of curve) {
    if (point.meanScaledPerturbation !== null && point.meanScaledPerturbation < epsilon) {
      if (smallest === null || point.depth < smallest) smallest = point.depth;
    }
  }
  return smallest;
}

/** Which d_scaled estimate of a FitRow the stop rule uses. */
export type ScaledDistanceEstimator = "saturated" | "fixedSlope";

export interface StopRuleOptions {
  /** Threshold on the mean scaled perturbation. Default 0.1, the paper's. */
  readonly epsilon?: number;
  /** Default "saturated": the mean d_scaled of the deepest depths, as the paper reads d off the saturated curves. */
  readonly estimator?: ScaledDistanceEstimator;
}

/** Stop rule for one curve. One row per (dataset, seed, section); seed null means the curve of means over seeds. */
export const StopRuleRowSchema = Schema.Struct({
  dataset: Utf8,
  /** Seed of a per-seed curve, or null for the curve of means over seeds. */
  seed: Schema.NullOr(Int32),
  /** Section 0, 1, 2, or -1 for the whole network (whose mean is over 3L blocks). */
  section: Int32,
  /** Threshold on the mean scaled perturbation. */
  epsilon: Double,
  /** "saturated" (mean d_scaled over the deepest depths) or "fixedSlope" (geometric mean of d_scaled). */
  estimator: Utf8,
  /** Our d_scaled from the chosen estimator. */
  scaledDistance: Schema.NullOr(Double),
  /** ceil(d_scaled / eps) (over 3 eps for the network); null without d_scaled. */
  predictedDepth: Schema.NullOr(Int32),
  /** Smallest trained depth with measured mean scaled perturbation below eps; null if none. */
  empiricalDepth: Schema.NullOr(Int32),
  /** Smallest trained depth of the curve. */
  minTrainedDepth: Int32,
  /** Largest trained depth of the curve (an empirical depth of null means: deeper than this). */
  maxTrainedDepth: Int32,
  /** The paper's d_scaled for this dataset and section; null if the paper has none. */
  paperScaledDistance: Schema.NullOr(Double),
  /** ceil(paper d_scaled / eps), computed, not copied. */
  paperPredictedDepth: Schema.NullOr(Int32),
  /** The paper's empirical depth for this dataset and section. */
  paperEmpiricalDepth: Schema.NullOr(Int32),
});
export type StopRuleRow = typeof StopRuleRowSchema.Type;

function curveKey(point: {
  readonly dataset: string;
  readonly seed?: number | null;
  readonly section: number;
}): string {
  return JSON.stringify([point.dataset, point.seed ?? null, point.section]);
}

/** Apply the stop rule to each fitted curve; `curves` must hold the points the fits were made from. */
export function stopRule(
  fits: readonly FitRow[],
  curves: readonly CurvePoint[],
  options: StopRuleOptions = {},
): StopRuleRow[] {
  const epsilon = options.epsilon ?? PAPER_EPSILON;
  const estimator = options.estimator ?? "saturated";
  if (!(epsilon > 0)) throw new RangeError(`epsilon must be > 0, got ${epsilon}`);
  const pointsByCurve = new Map<string, CurvePoint[]>();
  for (const point of curves) {
    const key = curveKey(point);
    const list = pointsByCurve.get(key);
    if (list === undefined) pointsByCurve.set(key, [point]);
    else list.push(point);
  }
  return fits.map((fit) => {
    const points = pointsByCurve.get(curveKey(fit));
    const first = points?.[0];
    if (points === undefined || first === undefined) throw new Error(`no curve points for fit ${curveKey(fit)}`);
    const blocksPerDepth = first.blocks / first.depth;
    const scaledDistance = estimator === "saturated" ? fit.scaledDistanceSaturated : fit.scaledDistanceFixedSlope;
    const reference = fit.section >= 0 ? paperReference(fit.dataset) : null;
    const paperScaledDistance = reference?.scaledDistance[fit.section] ?? null;
    return {
      dataset: fit.dataset,
      seed: fit.seed,
      section: fit.section,
      epsilon,
      estimator,
      scaledDistance,
      predictedDepth: scaledDistance === null ? null : predictedDepth(scaledDistance, epsilon, blocksPerDepth),
      empiricalDepth: empiricalDepth(points, epsilon),
      minTrainedDepth: Math.min(...points.map((p) => p.depth)),
      maxTrainedDepth: Math.max(...points.map((p) => p.depth)),
      paperScaledDistance,
      paperPredictedDepth: paperScaledDistance === null ? null : predictedDepth(paperScaledDistance, epsilon),
      paperEmpiricalDepth: reference?.empiricalDepth[fit.section] ?? null,
    };
  });
}
