/**
 * Fit stage statistics: how the mean scaled perturbation shrinks with depth.
 *
 * The paper's Eq. 11 says the mean scaled perturbation of a section is about d_scaled / L,
 * i.e. a power law in the trained depth L with exponent -1. Per (dataset, seed, section) we fit
 * log(mean scaled perturbation) = intercept + slope * log(L) by ordinary least squares and give the
 * slope's Student-t confidence interval, plus two estimates of d_scaled and the depth from which
 * the absolute computational distance d saturates.
 */
import { Schema } from "effect";
import { Double, Int32, Utf8 } from "../../pipeline/table.ts";
import { ordinaryLeastSquares, studentTQuantile } from "./stats.ts";

/**
 * One point of a depth curve: a (dataset, section) at one trained depth.
 * Both `SectionStatsRow` (per seed) and `SectionSeedSummaryRow` (means over seeds, no seed) fit this shape.
 */
export interface CurvePoint {
  readonly dataset: string;
  /** Absent for curves of means over seeds. */
  readonly seed?: number;
  /** Section 0, 1, 2, or -1 for the whole network. */
  readonly section: number;
  /** Trained depth L (blocks per section). */
  readonly depth: number;
  /** Blocks summed over: L for a section, 3L for the network. */
  readonly blocks: number;
  /** Computational distance d. */
  readonly distance: number;
  /** Scaled distance d_scaled. */
  readonly scaledDistance: number | null;
  /** d_scaled / blocks. */
  readonly meanScaledPerturbation: number | null;
}

export interface FitOptions {
  /** Two-sided confidence level of the slope interval. Default 0.95. */
  readonly confidence?: number;
  /** Relative tolerance for the saturation of d. Default 0.1 (10%). */
  readonly saturationTolerance?: number;
  /** Fraction of the deepest depths averaged for the saturated d_scaled (at least one depth). Default 1/3. */
  readonly saturatedFraction?: number;
}

/**
 * Fit of one depth curve. One row per (dataset, seed, section); seed null means the curve of means over seeds.
 * Estimators of d_scaled (Eq. 11, mean scaled perturbation ~ d_scaled / blocks):
 *  - `scaledDistanceFixedSlope`: geometric mean of d_scaled over the fitted depths. For a section this equals
 *    exp(intercept) of the log-log fit with the slope fixed at -1; for the network (3L blocks) it is 3 exp(intercept).
 *  - `scaledDistanceSaturated`: arithmetic mean of d_scaled over the deepest depths (the saturated curve,
 *    where the paper reads d off). The stop rule uses this one by default.
 */
export const FitRowSchema = Schema.Struct({
  dataset: Utf8,
  /** Seed of a per-seed curve, or null for the curve of means over seeds. */
  seed: Schema.NullOr(Int32),
  /** Section 0, 1, 2, or -1 for the whole network. */
  section: Int32,
  /** Depths in the log-log fit (those with a positive mean scaled perturbation). */
  depths: Int32,
  /** Depths left out of the fit: mean scaled perturbation null or not positive. */
  excludedDepths: Int32,
  /** Smallest trained depth in the curve. */
  minDepth: Int32,
  /** Largest trained depth in the curve. */
  maxDepth: Int32,
  /**
   * Exponent of the power law (OLS slope of log mean scaled perturbation on log L); hypothesis -1. Null below 2 depths.
   */
  slope: Schema.NullOr(Double),
  /** OLS intercept of the log-log fit. */
  intercept: Schema.NullOr(Double),
  /** Standard error of the slope; null below 3 depths. */
  slopeStdError: Schema.NullOr(Double),
  /** Standard error of the intercept; null below 3 depths. */
  interceptStdError: Schema.NullOr(Double),
  /** Lower end of the slope's confidence interval (slope - t * se). */
  slopeCiLow: Schema.NullOr(Double),
  /** Upper end of the slope's confidence interval (slope + t * se). */
  slopeCiHigh: Schema.NullOr(Double),
  /** Two-sided confidence level of the interval, e.g. 0.95. */
  confidence: Double,
  /** Student t quantile used: t_{(1+confidence)/2, depths-2}. */
  tQuantile: Schema.NullOr(Double),
  /** R^2 of the log-log fit. */
  rSquared: Schema.NullOr(Double),
  /** Geometric mean of d_scaled over the fitted depths (slope fixed at -1). */
  scaledDistanceFixedSlope: Schema.NullOr(Double),
  /** Mean of d_scaled over the deepest `saturatedDepths` depths. Default estimator of the stop rule. */
  scaledDistanceSaturated: Schema.NullOr(Double),
  /** How many of the deepest depths were averaged for scaledDistanceSaturated. */
  saturatedDepths: Int32,
  /** Computational distance d at the deepest trained depth. */
  distanceAtDeepest: Double,
  /** Smallest depth from which d stays within the tolerance of d at the deepest depth; null unless 2+ depths agree. */
  distanceSaturationDepth: Schema.NullOr(Int32),
  /** Relative tolerance used for distanceSaturationDepth. */
  saturationTolerance: Double,
});
export type FitRow = typeof FitRowSchema.Type;

/** Ascending by depth; throws on a repeated depth (mixing seeds or datasets in one curve is a bug). */
function sortedByDepth<Point extends CurvePoint>(points: readonly Point[]): Point[] {
  const sorted = [...points].sort((a, b) => a.depth - b.depth);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.depth === sorted[i - 1]!.depth)
      throw new Error(`depth ${sorted[i]!.depth} appears twice in one curve`);
  }
  return sorted;
}

/**
 * Smallest depth from which the distance stays within `tolerance` (relative) of its value at the
 * deepest depth, for every deeper trained depth. Null when only the deepest depth qualifies:
 * a plateau needs at least two depths. Points must be sorted by depth.
 */
export function distanceSaturationDepth(
  points: readonly { readonly depth: number; readonly distance: number }[],
  tolerance = 0.1,
): number | null {
  const deepest = points[points.length - 1];
  if (deepest === undefined) return null;
  let first = points.length - 1;
  while (
    first > 0 &&
    Math.abs(points[first - 1]!.distance - deepest.distance) <= tolerance * Math.abs(deepest.distance)
  ) {
    first -= 1;
  }
  return first === points.length - 1 ? null : points[first]!.depth;
}

/** Fit one curve (one dataset, seed and section; each depth once). */
export function fitCurve(points: readonly CurvePoint[], options: FitOptions = {}): FitRow {
  const confidence = options.confidence ?? 0.95;
  const saturationTolerance = options.saturationTolerance ?? 0.1;
  const saturatedFraction = options.saturatedFraction ?? 1 / 3;
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  if (!(saturatedFraction > 0 && saturatedFraction <= 1))
    throw new RangeError(`saturatedFraction must be in (0, 1], got ${saturatedFraction}`);
  const sorted = sortedByDepth(points);
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  if (first === undefined || last === undefined) throw new Error("cannot fit an empty curve");

  const fitted = sorted.filter((p) => p.meanScaledPerturbation !== null && p.meanScaledPerturbation > 0);
  const fit = ordinaryLeastSquares(
    fitted.map((p) => Math.log(p.depth)),
    fitted.map((p) => Math.log(p.meanScaledPerturbation!)),
  );
  const tQuantile =
    fit !== null && fit.degreesOfFreedom > 0 ? studentTQuantile((1 + confidence) / 2, fit.degreesOfFreedom) : null;
  const halfWidth = tQuantile !== null && fit?.slopeStdError != null ? tQuantile * fit.slopeStdError : null;

  const positiveScaled = fitted.filter((p) => p.scaledDistance !== null && p.scaledDistance > 0);
  const scaledDistanceFixedSlope =
    positiveScaled.length === 0
      ? null
      : Math.exp(positiveScaled.reduce((sum, p) => sum + Math.log(p.scaledDistance!), 0) / positiveScaled.length);

  const withScaled = sorted.filter((p) => p.scaledDistance !== null);
  const saturatedDepths = withScaled.length === 0 ? 0 : Math.max(1, Math.ceil(saturatedFraction * withScaled.length));
  const deepestScaled = withScaled.slice(withScaled.length - saturatedDepths);
  const scaledDistanceSaturated =
    deepestScaled.length === 0
      ? null
      : deepestScaled.reduce((sum, p) => sum + p.scaledDistance!, 0) / deepestScaled.length;

  return {
    dataset: first.dataset,
    seed: first.seed ?? null,
    section: first.section,
    depths: fitted.length,
    excludedDepths: sorted.length - fitted.length,
    minDepth: first.depth,
    maxDepth: last.depth,
    slope: fit?.slope ?? null,
    intercept: fit?.intercept ?? null,
    slopeStdError: fit?.slopeStdError ?? null,
    interceptStdError: fit?.interceptStdError ?? null,
    slopeCiLow: fit !== null && halfWidth !== null ? fit.slope - halfWidth : null,
    slopeCiHigh: fit !== null && halfWidth !== null ? fit.slope + halfWidth : null,
    confidence,
    tQuantile,
    rSquared: fit?.rSquared ?? null,
    scaledDistanceFixedSlope,
    scaledDistanceSaturated,
    saturatedDepths,
    distanceAtDeepest: last.distance,
    distanceSaturationDepth: distanceSaturationDepth(sorted, saturationTolerance),
    saturationTolerance,
  };
}

/** Key of the curve a point belongs to. */
function curveKey(point: CurvePoint): string {
  return JSON.stringify([point.dataset, point.seed ?? null, point.section]);
}

/**
 * Fit every curve found in `points`: one per (dataset, seed, section), in first-seen order.
 * Pass `SectionSeedSummaryRow`s for fits of the means over seeds, `SectionStatsRow`s for per-seed fits.
 */
export function fitCurves(points: readonly CurvePoint[], options: FitOptions = {}): FitRow[] {
  const curves = new Map<string, CurvePoint[]>();
  for (const point of points) {
    const key = curveKey(point);
    const curve = curves.get(key);
    if (curve === undefined) curves.set(key, [point]);
    else curve.push(point);
  }
  return [...curves.values()].map((curve) => fitCurve(curve, options));
}
