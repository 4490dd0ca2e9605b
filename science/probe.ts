/**
 * The paper's probe: how far each residual block moves its input. For block l with input x_l and
 * output x_{l+1} = x_l + F(x_l), per image (norms over all H*W*C values of that one image):
 *   abs    = ||F(x_l)||_2 = ||x_{l+1} - x_l||_2   (from the residual branch's output itself, which
 *            avoids the rounding of subtracting two nearly equal float32 tensors)
 *   scaled = abs / ||x_l||_2                      (null when ||x_l|| = 0)
 *   cosine = <x_l, x_{l+1}> / (||x_l|| ||x_{l+1}||), clamped to [-1, 1] against rounding
 *            (null when either norm is 0), with <x_l, x_{l+1}> = (|x_l|^2 + |x_{l+1}|^2 - |F|^2) / 2
 * The model runs in eval mode (BN moving statistics). Per image, only norms are reduced on the
 * backend (float32, one pass each): that of x_{l+1}, which is also the next block's x_l, that of
 * F(x_l), and that of x_l at a section's first block. Only [3 * blocks, batch] numbers are
 * downloaded per batch; ratios and the dot product are taken in float64 JS. Rows come batch by batch, each batch
 * computed when the consumer asks for it, so memory does not grow with the number of images. Cost over plain
 * inference: benchmarks/probe.ts.
 */
import type * as tfjs from "@tensorflow/tfjs";
import { Schema } from "effect";
import { Double, Int32 } from "../pipeline/table.ts";
import { imageNorms } from "./native.ts";
import { type ResNet, type TF, toModelInput } from "./resnet.ts";

/** One probe measurement: one residual block applied to one image (a row of the probe stage's table). */
export const ProbeRowSchema = Schema.Struct({
  /** Section 0, 1 or 2. */
  section: Int32,
  /** Block 0..L-1 within its section. */
  block: Int32,
  /** Index of the image in the probed set (0-based). */
  image: Int32,
  /** ||x_{l+1} - x_l||_2 over all H, W, C values of the image. */
  abs: Double,
  /** abs / ||x_l||_2; null when ||x_l|| = 0. */
  scaled: Schema.NullOr(Double),
  /** cos(x_l, x_{l+1}); null when either norm is 0. */
  cosine: Schema.NullOr(Double),
  inputNorm: Double,
  outputNorm: Double,
});
export type ProbeRow = typeof ProbeRowSchema.Type;

/** Images to probe: uint8 N*H*W*C, HWC interleaved (labels are not needed). */
export interface ProbeImages {
  readonly images: Uint8Array;
  readonly count: number;
}

export interface ProbeOptions {
  readonly batchSize: number;
  /** Per-channel normalisation on the 0..1 scale, as used in training. */
  readonly mean: ReadonlyArray<number>;
  readonly std: ReadonlyArray<number>;
}

/** The rows of one batch of images, ordered by section, block, then image. */
export interface ProbeBatch {
  readonly rows: ReadonlyArray<ProbeRow>;
  /** Images probed so far, this batch included. */
  readonly imagesDone: number;
  readonly imagesTotal: number;
}

export interface ProbeSummary {
  readonly images: number;
  readonly rows: number;
  /** Rows whose block input had norm 0 (scaled and cosine null). */
  readonly zeroInputNorm: number;
  /** Rows with a non-zero input but a zero output norm (cosine null). */
  readonly zeroOutputNorm: number;
}

export const EMPTY_PROBE_SUMMARY: ProbeSummary = { images: 0, rows: 0, zeroInputNorm: 0, zeroOutputNorm: 0 };

/** The summary after one more batch. */
export const addToSummary = (summary: ProbeSummary, batch: ProbeBatch): ProbeSummary => {
  let { zeroInputNorm, zeroOutputNorm } = summary;
  for (const r of batch.rows) {
    if (r.inputNorm === 0) zeroInputNorm++;
    else if (r.outputNorm === 0) zeroOutputNorm++;
  }
  return { images: batch.imagesDone, rows: summary.rows + batch.rows.length, zeroInputNorm, zeroOutputNorm };
};

/**
 * Runs every image through `model` in eval mode, `batchSize` images at a time, and yields each batch's rows; a batch
 * is computed only when the consumer asks for the next one (back-pressure for writers).
 */
export async function* probeBatches(
  tf: TF,
  model: ResNet,
  data: ProbeImages,
  options: ProbeOptions,
): AsyncGenerator<ProbeBatch> {
  const [h, w, c] = model.config.inputShape;
  const perImage = h * w * c;
  if (data.images.length !== data.count * perImage) {
    throw new RangeError(`probe: expected ${data.count * perImage} pixel bytes, got ${data.images.length}`);
  }
  if (!Number.isInteger(options.batchSize) || options.batchSize < 1)
    throw new RangeError("probe: batchSize must be >= 1");
  for (let start = 0; start < data.count; start += options.batchSize) {
    const end = Math.min(data.count, start + options.batchSize);
    const n = end - start;
    const blocks: Array<{ section: number; block: number }> = [];
    const stacked = tf.tidy(() => {
      // Per block [|x_l|, |x_{l+1}|, |F(x_l)|]; a block's input is the previous block's output (the same tensor),
      // so its norm is reused and only a section's first block computes its own.
      const norms: tfjs.Tensor1D[] = [];
      let previous: { output: tfjs.Tensor4D; norm: tfjs.Tensor1D } | undefined;
      const pixels = tf.tensor4d(data.images.subarray(start * perImage, end * perImage), [n, h, w, c], "int32");
      model.forward(toModelInput(tf, pixels, options.mean, options.std), {
        training: false,
        onBlock: (section, block, xIn, xOut, perturbation) => {
          // The model numbers sections and blocks from 1; the table from 0.
          blocks.push({ section: section - 1, block: block - 1 });
          const outNorm = imageNorms(tf, xOut);
          norms.push(
            previous?.output === xIn ? previous.norm : imageNorms(tf, xIn),
            outNorm,
            imageNorms(tf, perturbation),
          );
          previous = { output: xOut, norm: outNorm };
        },
      });
      return tf.stack(norms); // [3 * blocks, n]
    });
    let values: Float32Array;
    try {
      values = (await stacked.data()) as Float32Array;
    } finally {
      stacked.dispose();
    }
    const rows: ProbeRow[] = [];
    blocks.forEach(({ section, block }, k) => {
      const base = k * 3 * n;
      for (let i = 0; i < n; i++) {
        const inputNorm = values[base + i]!;
        const outputNorm = values[base + n + i]!;
        const abs = values[base + 2 * n + i]!;
        let scaled: number | null = null;
        let cosine: number | null = null;
        if (inputNorm !== 0) {
          scaled = abs / inputNorm;
          if (outputNorm !== 0) {
            // <x_l, x_{l+1}> from |x_{l+1} - x_l|^2 = |x_l|^2 + |x_{l+1}|^2 - 2 <x_l, x_{l+1}>, in float64.
            const dot = (inputNorm * inputNorm + outputNorm * outputNorm - abs * abs) / 2;
            cosine = Math.min(1, Math.max(-1, dot / (inputNorm * outputNorm)));
          }
        }
        rows.push({ section, block, image: start + i, abs, scaled, cosine, inputNorm, outputNorm });
      }
    });
    yield { rows, imagesDone: end, imagesTotal: data.count };
  }
}
