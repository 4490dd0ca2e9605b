/**
 * Seeded pseudo-random numbers with explicit, serialisable state.
 *
 * Generator: sfc32 (Chris Doty-Humphrey's "Small Fast Counting" generator, 32-bit variant, as in
 * PractRand), which passes PractRand and has a 128-bit state that fits in four JSON numbers.
 * Everything is integer arithmetic on 32-bit words, so the same seed gives the same stream on every
 * machine and every TensorFlow.js backend (weights are drawn here in JS, never on the backend).
 *
 * Normal deviates use the Box-Muller transform, keeping only the cosine branch so that the state
 * stays exactly the four sfc32 words (no cached spare deviate).
 */

/** The complete state of an {@link Rng}; plain unsigned 32-bit integers, safe to JSON-encode. */
export interface RngState {
  readonly a: number;
  readonly b: number;
  readonly c: number;
  readonly d: number;
}

const TWO_POW_32 = 4294967296;

/** MurmurHash3's 32-bit finaliser: a bijective avalanche mix of one word. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Hashes a list of integers (each a safe integer, possibly negative or above 2^32) into one 32-bit
 * word. Used to derive independent streams, e.g. `hashWords([seed, epoch, STREAM_SHUFFLE])`.
 */
export function hashWords(words: ReadonlyArray<number>): number {
  let h = 0x9e3779b9;
  for (const w of words) {
    if (!Number.isSafeInteger(w)) throw new RangeError(`hashWords: ${w} is not a safe integer`);
    const low = w >>> 0; // two's complement low word (also right for negatives)
    const high = Math.floor(w / TWO_POW_32) >>> 0;
    h = fmix32((h ^ low) >>> 0);
    h = fmix32((h ^ high ^ 0x6a09e667) >>> 0);
  }
  return h;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  private constructor(state: RngState) {
    this.a = state.a >>> 0;
    this.b = state.b >>> 0;
    this.c = state.c >>> 0;
    this.d = state.d >>> 0;
  }

  /**
   * A generator seeded from one or more integers (seed plus optional stream labels). The 128-bit
   * state is filled from hashes of the words, then 12 outputs are discarded as the sfc32 author
   * recommends for seeding.
   */
  static fromSeed(...words: number[]): Rng {
    const base = hashWords(words);
    const rng = new Rng({
      a: fmix32(base ^ 0x243f6a88),
      b: fmix32(base ^ 0x85a308d3),
      c: fmix32(base ^ 0x13198a2e),
      d: 1,
    });
    for (let i = 0; i < 12; i++) rng.nextUint32();
    return rng;
  }

  /** Restores a generator from a state captured with {@link Rng.state}. */
  static fromState(state: RngState): Rng {
    return new Rng(state);
  }

  state(): RngState {
    return { a: this.a, b: this.b, c: this.c, d: this.d };
  }

  /** Next output, uniform on the integers 0 .. 2^32-1. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform on [0, 1), in steps of 2^-32. */
  nextFloat(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /**
   * Uniform integer in [0, n) for 1 <= n <= 2^32, exactly unbiased (rejection of the incomplete
   * last block of 2^32 mod n values).
   */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) throw new RangeError(`nextInt: bad bound ${n}`);
    const limit = TWO_POW_32 - (TWO_POW_32 % n); // largest multiple of n not above 2^32
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Standard normal deviate by Box-Muller (cosine branch); u1 is in (0, 1] so log(u1) is finite. */
  nextNormal(): number {
    const u1 = (this.nextUint32() + 1) / TWO_POW_32;
    const u2 = this.nextFloat();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** A uniformly random permutation of 0 .. n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = out[i]!;
      out[i] = out[j]!;
      out[j] = tmp;
    }
    return out;
  }
}
