/**
 * Summary statistics of a decoded split: per-channel pixel mean/std on the 0..1 scale and the label histogram.
 *
 * The mean and std are those used to normalise inputs (MNIST 0.1307/0.3081, CIFAR-10 0.4914.../0.2470...): for
 * each channel, over every pixel of every image of the split, the mean and the population standard deviation
 * (divide by N, not N - 1) of value / 255.
 */

export interface ChannelStats {
  /** Per-channel mean of value / 255. */
  readonly mean: number[];
  /** Per-channel population standard deviation of value / 255. */
  readonly std: number[];
  /** Number of values per channel. */
  readonly count: number;
}

/**
 * Per-channel mean and population std of HWC interleaved uint8 pixels (channel of index i is i % channels).
 *
 * Exact up to the final division: the sum S and the sum of squares Q of the raw bytes are integers that float64
 * holds exactly (while count * 255^2 < 2^53, i.e. up to ~1.4e11 values per channel), and the variance numerator
 * N*Q - S^2 is formed in BigInt, so there is no cancellation error.
 */
export const channelMeanStd = (pixels: Uint8Array, channels: number): ChannelStats => {
  if (!Number.isInteger(channels) || channels < 1) throw new Error(`channelMeanStd: bad channel count ${channels}`);
  if (pixels.length === 0 || pixels.length % channels !== 0) {
    throw new Error(`channelMeanStd: ${pixels.length} values is not a positive multiple of ${channels} channels`);
  }
  const count = pixels.length / channels;
  if (count * 255 * 255 > Number.MAX_SAFE_INTEGER)
    throw new Error(`channelMeanStd: ${count} values per channel is too many`);
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    let sumOfSquares = 0;
    for (let i = c; i < pixels.length; i += channels) {
      const v = pixels[i]!; // i < length by the loop bound
      sum += v;
      sumOfSquares += v * v;
    }
    const n = BigInt(count);
    const s = BigInt(sum);
    const varianceNumerator = Number(n * BigInt(sumOfSquares) - s * s); // = N^2 * variance (in raw units^2)
    mean.push(sum / count / 255);
    std.push(Math.sqrt(varianceNumerator) / count / 255);
  }
  return { mean, std, count };
};

/** Counts of each label 0..classCount-1; throws on a label outside that range. */
export const labelHistogram = (labels: Uint8Array, classCount: number): number[] => {
  const counts = new Array<number>(classCount).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i] ?? 0;
    if (label >= classCount)
      throw new Error(`labelHistogram: label ${label} at index ${i} is not in 0..${classCount - 1}`);
    counts[label] = (counts[label] ?? 0) + 1;
  }
  return counts;
};
