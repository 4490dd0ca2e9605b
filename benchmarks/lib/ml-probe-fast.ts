/**
 * Prototype of a cheaper per-block reduction for science/probe.ts, measured by benchmarks/probe.ts.
 *
 * science/probe.ts's blockSums runs 9 activation-sized ops per block (square+sum of x_l, square+sum of x_{l+1},
 * sub+square+sum of the difference, mul+sum of the product). Two changes:
 *  - "reuse" (bit-identical rows): x_l of block l+1 is the very tensor x_{l+1} of block l (the forward pass hands
 *    the same object on), so its sum of squares is the one already computed; only the first block of a section
 *    (after a transition conv) needs its own. And sub+square becomes TensorFlow's SquaredDifference, one pass
 *    with the same float32 operations (d = b - a, d * d). 9 -> 6 ops per block (plus 2 for section starts).
 *  - "identity": additionally <x_l, x_{l+1}> = (|x_l|^2 + |x_{l+1}|^2 - |x_{l+1} - x_l|^2) / 2, taken in float64 JS
 *    from the three float32 sums, dropping the mul+sum pass: 4 ops per block. Not bit-identical; the cosine
 *    changes by about float32 epsilon times (|x_l|^2 + |x_{l+1}|^2) / (|x_l| |x_{l+1}|).
 * The rest is probeModel verbatim (one download per batch, rows built in float64, streamed to onRows).
 */
import type * as tfjs from "@tensorflow/tfjs";
import type { ProbeImages, ProbeOptions, ProbeRow, ProbeSummary } from "../../science/probe.ts";
import { type ResNet, type TF, toModelInput } from "../../science/resnet.ts";

export type BlockSumsMode = "reuse" | "identity";

/** probeModel with the cheaper reductions of `mode`; same rows (bit-identical for "reuse"). */
export async function probeModelFast(
  tf: TF,
  model: ResNet,
  data: ProbeImages,
  options: ProbeOptions,
  mode: BlockSumsMode,
): Promise<ProbeSummary> {
  const [h, w, c] = model.config.inputShape;
  const perImage = h * w * c;
  if (data.images.length !== data.count * perImage) {
    throw new RangeError(`probe: expected ${data.count * perImage} pixel bytes, got ${data.images.length}`);
  }
  const sumsPerBlock = mode === "reuse" ? 4 : 3;
  let rows = 0;
  let zeroInputNorm = 0;
  let zeroOutputNorm = 0;
  for (let start = 0; start < data.count; start += options.batchSize) {
    const end = Math.min(data.count, start + options.batchSize);
    const n = end - start;
    const blocks: Array<{ section: number; block: number }> = [];
    const stacked = tf.tidy(() => {
      const sums: tfjs.Tensor1D[] = [];
      let previous: { output: tfjs.Tensor4D; sumSq: tfjs.Tensor1D } | undefined;
      const sumSq = (x: tfjs.Tensor2D) => tf.sum(tf.square(x), 1) as tfjs.Tensor1D;
      const pixels = tf.tensor4d(data.images.subarray(start * perImage, end * perImage), [n, h, w, c], "int32");
      model.forward(toModelInput(tf, pixels, options.mean, options.std), {
        training: false,
        onBlock: (section, block, xIn, xOut) => {
          blocks.push({ section, block });
          const a = tf.reshape(xIn, [n, -1]) as tfjs.Tensor2D;
          const b = tf.reshape(xOut, [n, -1]) as tfjs.Tensor2D;
          const inSumSq = previous?.output === xIn ? previous.sumSq : sumSq(a);
          const outSumSq = sumSq(b);
          sums.push(inSumSq, outSumSq, tf.sum(tf.squaredDifference(b, a), 1) as tfjs.Tensor1D);
          if (mode === "reuse") sums.push(tf.sum(tf.mul(a, b), 1) as tfjs.Tensor1D);
          previous = { output: xOut, sumSq: outSumSq };
        },
      });
      return tf.stack(sums); // [blocks * sumsPerBlock, n]
    });
    let values: Float32Array;
    try {
      values = (await stacked.data()) as Float32Array;
    } finally {
      stacked.dispose();
    }
    const batchRows: ProbeRow[] = [];
    blocks.forEach(({ section, block }, k) => {
      const base = k * sumsPerBlock * n;
      for (let i = 0; i < n; i++) {
        const inSq = values[base + i]!;
        const outSq = values[base + n + i]!;
        const diffSq = values[base + 2 * n + i]!;
        const inputNorm = Math.sqrt(inSq);
        const outputNorm = Math.sqrt(outSq);
        const abs = Math.sqrt(diffSq);
        const dot = mode === "reuse" ? values[base + 3 * n + i]! : (inSq + outSq - diffSq) / 2;
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
