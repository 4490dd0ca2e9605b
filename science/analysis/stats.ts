/**
 * Numeric primitives for the paper's statistics: streaming moments, two-pass mean/std,
 * ordinary least squares with standard errors, the Student t distribution, and a ceil
 * that forgives floating-point noise. All arithmetic is plain float64.
 */

/**
 * Streaming mean and variance (Welford's algorithm): numerically stable, O(1) memory,
 * so millions of probe values never need to be held at once.
 */
export class RunningMoments {
  private n = 0;
  private runningMean = 0;
  /** Sum of squared deviations from the running mean. */
  private m2 = 0;

  add(value: number): void {
    this.n += 1;
    const delta = value - this.runningMean;
    this.runningMean += delta / this.n;
    this.m2 += delta * (value - this.runningMean);
  }

  get count(): number {
    return this.n;
  }

  /** Mean of the values added, or null when none were. */
  mean(): number | null {
    return this.n === 0 ? null : this.runningMean;
  }

  /** Sample standard deviation (divisor n-1), or null with fewer than two values. */
  sampleStd(): number | null {
    return this.n < 2 ? null : Math.sqrt(this.m2 / (this.n - 1));
  }
}

/** Two-pass mean and sample standard deviation (divisor n-1); nulls where undefined. */
export function meanAndSampleStd(values: readonly number[]): { mean: number | null; std: number | null } {
  const n = values.length;
  if (n === 0) return { mean: null, std: null };
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / n;
  if (n < 2) return { mean, std: null };
  let squares = 0;
  for (const v of values) squares += (v - mean) * (v - mean);
  return { mean, std: Math.sqrt(squares / (n - 1)) };
}

/** Result of an ordinary least squares fit y = intercept + slope * x. */
export interface LinearFit {
  readonly n: number;
  readonly slope: number;
  readonly intercept: number;
  /** Residual degrees of freedom, n - 2. */
  readonly degreesOfFreedom: number;
  /** Standard error of the slope; null when n < 3 (no residual degrees of freedom). */
  readonly slopeStdError: number | null;
  /** Standard error of the intercept; null when n < 3. */
  readonly interceptStdError: number | null;
  /** Coefficient of determination; null when all y are equal (no variance to explain). */
  readonly rSquared: number | null;
}

/**
 * Ordinary least squares of ys on xs with classical (homoscedastic) standard errors.
 * Returns null when the slope is not identifiable: fewer than two points or all xs equal.
 */
export function ordinaryLeastSquares(xs: readonly number[], ys: readonly number[]): LinearFit | null {
  if (xs.length !== ys.length) throw new RangeError(`x and y lengths differ: ${xs.length} vs ${ys.length}`);
  const n = xs.length;
  if (n < 2) return null;
  let xSum = 0;
  let ySum = 0;
  for (let i = 0; i < n; i++) {
    xSum += xs[i]!;
    ySum += ys[i]!;
  }
  const xMean = xSum / n;
  const yMean = ySum / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - xMean;
    const dy = ys[i]! - yMean;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (sxx === 0) return null;
  const slope = sxy / sxx;
  const intercept = yMean - slope * xMean;
  let residualSquares = 0;
  for (let i = 0; i < n; i++) {
    const r = ys[i]! - (intercept + slope * xs[i]!);
    residualSquares += r * r;
  }
  const degreesOfFreedom = n - 2;
  const residualVariance = degreesOfFreedom > 0 ? residualSquares / degreesOfFreedom : null;
  return {
    n,
    slope,
    intercept,
    degreesOfFreedom,
    slopeStdError: residualVariance === null ? null : Math.sqrt(residualVariance / sxx),
    interceptStdError: residualVariance === null ? null : Math.sqrt(residualVariance * (1 / n + (xMean * xMean) / sxx)),
    rSquared: syy === 0 ? null : 1 - residualSquares / syy,
  };
}

/** Lanczos coefficients (g = 7, 9 terms): |relative error| < 1e-15 for positive arguments. */
const LANCZOS_G = 7;
const LANCZOS_COEFFICIENTS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** Natural logarithm of the gamma function, for x > 0. */
export function logGamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`logGamma needs x > 0, got ${x}`);
  if (x < 0.5) {
    // Reflection: Gamma(x) Gamma(1-x) = pi / sin(pi x).
    return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  }
  const z = x - 1;
  let series = LANCZOS_COEFFICIENTS[0]!;
  for (let i = 1; i < LANCZOS_COEFFICIENTS.length; i++) series += LANCZOS_COEFFICIENTS[i]! / (z + i);
  const t = z + LANCZOS_G + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(series);
}

/** Continued fraction for the incomplete beta function (modified Lentz), valid for x < (a+1)/(a+b+2). */
function incompleteBetaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  const maxIterations = 100_000;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let result = d;
  for (let m = 1; m <= maxIterations; m++) {
    const m2 = 2 * m;
    // Even step.
    let numerator = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + numerator * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + numerator / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    result *= d * c;
    // Odd step.
    numerator = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + numerator * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + numerator / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const factor = d * c;
    result *= factor;
    if (Math.abs(factor - 1) < 1e-16) return result;
  }
  throw new Error(`incomplete beta continued fraction did not converge (x=${x}, a=${a}, b=${b})`);
}

/** Regularized incomplete beta function I_x(a, b) for 0 <= x <= 1, a, b > 0. */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0)) throw new RangeError(`incomplete beta needs a, b > 0, got a=${a}, b=${b}`);
  if (!(x >= 0 && x <= 1)) throw new RangeError(`incomplete beta needs 0 <= x <= 1, got ${x}`);
  if (x === 0) return 0;
  if (x === 1) return 1;
  const logFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x);
  if (x < (a + 1) / (a + b + 2)) {
    return (Math.exp(logFront) * incompleteBetaContinuedFraction(x, a, b)) / a;
  }
  return 1 - (Math.exp(logFront) * incompleteBetaContinuedFraction(1 - x, b, a)) / b;
}

/** Cumulative distribution function of Student's t with `degreesOfFreedom` > 0 (not necessarily integer). */
export function studentTCdf(t: number, degreesOfFreedom: number): number {
  if (!(degreesOfFreedom > 0)) throw new RangeError(`degrees of freedom must be > 0, got ${degreesOfFreedom}`);
  if (Number.isNaN(t)) return Number.NaN;
  if (t === 0) return 0.5;
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  // P(|T| > |t|) = I_{df/(df+t^2)}(df/2, 1/2).
  const x = degreesOfFreedom / (degreesOfFreedom + t * t);
  const tail = 0.5 * regularizedIncompleteBeta(x, degreesOfFreedom / 2, 0.5);
  return t > 0 ? 1 - tail : tail;
}

/**
 * Quantile (inverse CDF) of Student's t: the t with P(T <= t) = p, for 0 < p < 1.
 * Found by bracketing and bisection on the monotone CDF, to full float64 resolution.
 */
export function studentTQuantile(p: number, degreesOfFreedom: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`probability must be in (0, 1), got ${p}`);
  if (!(degreesOfFreedom > 0)) throw new RangeError(`degrees of freedom must be > 0, got ${degreesOfFreedom}`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, degreesOfFreedom);
  let low = 0;
  let high = 1;
  while (studentTCdf(high, degreesOfFreedom) < p) {
    low = high;
    high *= 2;
    if (!Number.isFinite(high)) throw new RangeError(`t quantile out of range (p=${p}, df=${degreesOfFreedom})`);
  }
  for (let i = 0; i < 2000; i++) {
    const middle = 0.5 * (low + high);
    if (middle === low || middle === high) break;
    if (studentTCdf(middle, degreesOfFreedom) < p) low = middle;
    else high = middle;
  }
  return 0.5 * (low + high);
}

/**
 * Ceiling that treats values within a relative tolerance of an integer as that integer,
 * so ceil(3.0 / 0.1) = ceil(30.000000000000004) is 30, not 31.
 */
export function ceilWithTolerance(x: number, relativeTolerance = 1e-9): number {
  if (!Number.isFinite(x)) throw new RangeError(`cannot take the ceiling of ${x}`);
  const nearest = Math.round(x);
  if (Math.abs(x - nearest) <= relativeTolerance * Math.max(1, Math.abs(x))) return nearest;
  return Math.ceil(x);
}
