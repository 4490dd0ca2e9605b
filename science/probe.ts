/**
 * The paper's probe: how far each residual block moves its input. For block l with input x_l and
 * output x_{l+1} = x_l + F(x_l), per image (norms over all H*W*C values of that one image):
 *   abs    = ||x_{l+1} - x_l||_2            (the size of the residual F(x_l))
 *   scaled = abs / ||x_l||_2                (null when ||x_l|| = 0)
 *   cosine = <x_l, x_{l+1}> / (||x_l|| ||x_{l+1}||), clamped to [-1, 1] against rounding
 *            (null when either norm is 0)
 * The model runs in eval mode (BN moving statistics). Per-image sums of squares and dot products
 * are reduced on the backend in float32; only [blocks, 4, batch] numbers are downloaded per batch,
 * and the square roots and ratios are taken in float64 JS. Rows are streamed batch by batch to a
 * callback, so memory does not grow with the number of images.
 */
import type * as tfjs from "@tensorflow/tfjs";
import { type ResNet, type TF, toModelInput } from "./resnet.ts";

export interface ProbeRow {
  /** 1..3 */
  readonly section: number;
  /** 1..L within the section */
  readonly block: number;
  /** Index of the image in the probed set (0-based). */
  readonly image: number;
  readonly abs: number;
  readonly scaled: number | null;
  readonly cosine: number | null;
  readonly inputNorm: number;
  readonly outputNorm: number;
}

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
  /**
   * Receives the rows of one batch, ordered by section, block, then image; awaited before the
   * next batch runs (back-pressure for writers).
   */
  readonly onRows: (rows: ReadonlyArray<ProbeRow>) => void | Promise<void>;
  readonly onProgress?: (imagesDone: number, imagesTotal: number) => void;
}

export interface ProbeSummary {
  readonly images: number;
  readonly rows: number;
  /** Rows whose block input had norm 0 (scaled and cosine null). */
  readonly zeroInputNorm: number;
  /** Rows with a non-zero input but a zero output norm (cosine null). */
  readonly zeroOutputNorm: number;
}

/** Rows [sumSq(x_l), sumSq(x_{l+1}), sumSq(x_{l+1} - x_l), <x_l, x_{l+1}>] per image, shape [4, N]. */
function blockSums(tf: TF, xIn: tfjs.Tensor4D, xOut: tfjs.Tensor4D): tfjs.Tensor2D {
  return tf.tidy(() => {
    const n = xIn.shape[0];
    const a = tf.reshape(xIn, [n, -1]);
    const b = tf.reshape(xOut, [n, -1]);
    return tf.stack([
      tf.sum(tf.square(a), 1),
      tf.sum(tf.square(b), 1),
      tf.sum(tf.square(tf.sub(b, a)), 1),
      tf.sum(tf.mul(a, b), 1),
    ]) as tfjs.Tensor2D;
  });
}

/** Runs every image through `model` in eval mode and streams the per (block, image) rows. */
export async function probeModel(tf: TF, model: ResNet, data: ProbeImages, options: ProbeOptions): Promise<ProbeSummary> {
  const [h, w, c] = model.config.inputShape;
  const perImage = h * w * c;
  if (data.images.length !== data.count * perImage) {
    throw new RangeError(`probe: expected ${data.count * perImage} pixel bytes, got ${data.images.length}`);
  }
  if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new RangeError("probe: batchSize must be >= 1");
  let rows = 0;
  let zeroInputNorm = 0;
  let zeroOutputNorm = 0;
  for (let start = 0; start < data.count; start += options.batchSize) {
    const end = Math.min(data.count, start + options.batchSize);
    const n = end - start;
    const blocks: Array<{ section: number; block: number }> = [];
    const stacked = tf.tidy(() => {
      const sums: tfjs.Tensor2D[] = [];
      const pixels = tf.tensor4d(data.images.subarray(start * perImage, end * perImage), [n, h, w, c], "int32");
      model.forward(toModelInput(tf, pixels, options.mean, options.std), {
        training: false,
        onBlock: (section, block, xIn, xOut) => {
          blocks.push({ section, block });
          sums.push(blockSums(tf, xIn, xOut));
        },
      });
      return tf.stack(sums); // [blocks, 4, n]
    });
    let values: Float32Array;
    try {
      values = (await stacked.data()) as Float32Array;
    } finally {
      stacked.dispose();
    }
    const batchRows: ProbeRow[] = [];
    blocks.forEach(({ section, block }, k) => {
      const base = k * 4 * n;
      for (let i = 0; i < n; i++) {
        const inputNorm = Math.sqrt(values[base + i]!);
        const outputNorm = Math.sqrt(values[base + n + i]!);
        const abs = Math.sqrt(values[base + 2 * n + i]!);
        const dot = values[base + 3 * n + i]!;
        let scaled: number | null = null;
        let cosine: number | null = null;
        if (inputNorm === 0) zeroInputNorm++;
        else {
          scaled = abs / inputNorm;
          if (outputNorm === 0) zeroOutputNorm++;
          else cosine = Math.min(1, Math.max(-1, dot / (inputNorm * outputNorm)));
        }
        batchRows.push({ section, block, image: start + i, abs, scaled, cosine, inputNorm, outputNorm });
      }
    });
    rows += batchRows.length;
    await options.onRows(batchRows);
    options.onProgress?.(end, data.count);
  }
  return { images: data.count, rows, zeroInputNorm, zeroOutputNorm };
}
