/**
 * BatchNorm followed by ReLU, the pre-activation of every residual block and of the head (science/resnet.ts), in its
 * three paths: eval mode with the moving statistics ({@link batchNormReluInference}), training mode as TensorFlow's
 * fused kernels on native TensorFlow ({@link fusedBatchNormReluTraining}), and training mode with hand-written
 * closed-form gradients on the pure-JS backend ({@link batchNormTraining}, {@link reluTraining});
 * {@link batchNormReluTraining} picks the training path for the active backend.
 *
 * Epsilon 1e-5. Training mode normalises with the batch mean and biased batch variance over (N, H, W) and hands them
 * to a callback that updates the moving averages as moving = 0.9 * moving + 0.1 * batch (PyTorch "momentum 0.1",
 * identical to Keras "momentum 0.9"; the biased batch variance is used, as Keras does). The two training paths agree
 * to float32 rounding; test/resnet.test.ts compares both with autodiff and with float64 finite differences.
 */
import type * as tfjs from "@tensorflow/tfjs";
import { nativeBackend } from "./native.ts";
import type { TF } from "./resnet.ts";

export const BN_EPSILON = 1e-5;
/** Weight of the new batch statistic in the moving average (PyTorch convention). */
export const BN_MOVING_AVERAGE_UPDATE = 0.1;

/**
 * Receives a training batch's per-channel mean and biased variance (valid during the call only, not differentiated).
 */
export type OnBatchMoments = (mean: tfjs.Tensor1D, variance: tfjs.Tensor1D) => void;

/** Eval-mode BatchNorm with the moving statistics, then ReLU (tf.batchNorm is TensorFlow's FusedBatchNorm natively). */
export function batchNormReluInference(
  tf: TF,
  x: tfjs.Tensor4D,
  movingMean: tfjs.Tensor1D,
  movingVariance: tfjs.Tensor1D,
  gamma: tfjs.Tensor1D,
  beta: tfjs.Tensor1D,
): tfjs.Tensor4D {
  return tf.relu(tf.batchNorm(x, movingMean, movingVariance, beta, gamma, BN_EPSILON));
}

/**
 * Training-mode BatchNorm then ReLU on the active backend: one fused-kernel tape entry on native TensorFlow
 * ({@link fusedBatchNormReluTraining}), the closed-form gradients elsewhere ({@link batchNormTraining},
 * {@link reluTraining}). Call it inside tf.tidy (or tf.variableGrads).
 */
export function batchNormReluTraining(
  tf: TF,
  x: tfjs.Tensor4D,
  gamma: tfjs.Tensor1D,
  beta: tfjs.Tensor1D,
  onBatchMoments: OnBatchMoments,
): tfjs.Tensor4D {
  if (hasFusedBatchNorm(tf)) return fusedBatchNormReluTraining(tf, x, gamma, beta, onBatchMoments);
  return reluTraining(tf, batchNormTraining(tf, x, gamma, beta, onBatchMoments));
}

/**
 * Training-mode BatchNorm over (N, H, W) per channel: y = gamma * (x - mean) / sqrt(variance + eps)
 * + beta with the batch mean and biased batch variance, which are passed to `onBatchMoments` (e.g.
 * for moving averages; they are not differentiated there).
 *
 * Used in training on the pure-JS backend (native TensorFlow runs {@link fusedBatchNormReluTraining}).
 * The gradient is the standard closed form instead of TensorFlow.js autodiff through tf.moments and
 * tf.batchNorm, because that chain costs about twice as many full-size tensor passes. With
 * xhat = (x - mean) / sqrt(variance + eps) and n = N*H*W:
 *   dbeta = sum(dy),  dgamma = sum(dy * xhat),
 *   dx = gamma / sqrt(variance + eps) * (dy - dbeta / n - xhat * dgamma / n).
 * test/resnet.test.ts checks value and gradients against autodiff of the composite.
 */
export function batchNormTraining(
  tf: TF,
  x: tfjs.Tensor4D,
  gamma: tfjs.Tensor1D,
  beta: tfjs.Tensor1D,
  onBatchMoments?: OnBatchMoments,
): tfjs.Tensor4D {
  const axes = [0, 1, 2];
  const normalise = tf.customGrad((...args: Array<tfjs.Tensor | tfjs.GradSaveFunc>) => {
    const [input, g, b, save] = args as [tfjs.Tensor4D, tfjs.Tensor1D, tfjs.Tensor1D, tfjs.GradSaveFunc];
    const { mean, variance } = tf.moments(input, axes);
    onBatchMoments?.(mean as tfjs.Tensor1D, variance as tfjs.Tensor1D);
    const invStd = tf.rsqrt(tf.add(variance, BN_EPSILON));
    const xHat = tf.mul(tf.sub(input, mean), invStd);
    save([xHat, invStd, g]);
    return {
      value: tf.add(tf.mul(xHat, g), b),
      gradFunc: (dy: tfjs.Tensor, saved: tfjs.Tensor[]) => {
        const [savedXHat, savedInvStd, savedGamma] = saved as [tfjs.Tensor4D, tfjs.Tensor1D, tfjs.Tensor1D];
        const n = savedXHat.size / savedXHat.shape[3];
        const dBeta = tf.sum(dy, axes);
        const dGamma = tf.sum(tf.mul(dy, savedXHat), axes);
        const scale = tf.mul(savedGamma, savedInvStd); // gamma / sqrt(variance + eps), per channel
        // dx = scale * dy - (scale * dbeta / n + xhat * scale * dgamma / n)
        const dx = tf.sub(
          tf.mul(dy, scale),
          tf.add(tf.mul(savedXHat, tf.div(tf.mul(scale, dGamma), n)), tf.div(tf.mul(scale, dBeta), n)),
        );
        return [dx, dGamma, dBeta];
      },
    };
  });
  return normalise(x, gamma, beta) as tfjs.Tensor4D;
}

/**
 * ReLU whose gradient is dy * (x > 0) in three tensor ops: the same values as tf.relu's gradient
 * (dy * step(x), step(0) = 0), whose step() tfjs-node builds from six full-size ops (isNaN,
 * greater, two fills, two selects). Used after {@link batchNormTraining} on the pure-JS backend.
 */
export function reluTraining(tf: TF, x: tfjs.Tensor4D): tfjs.Tensor4D {
  const relu = tf.customGrad((...args: Array<tfjs.Tensor | tfjs.GradSaveFunc>) => {
    const [input, save] = args as [tfjs.Tensor4D, tfjs.GradSaveFunc];
    save([input]);
    return {
      value: tf.relu(input),
      gradFunc: (dy: tfjs.Tensor, saved: tfjs.Tensor[]) => tf.mul(dy, tf.cast(tf.greater(saved[0]!, 0), "float32")),
    };
  });
  return relu(x);
}

/**
 * Whether the active backend is native TensorFlow (tfjs-node or tfjs-node-gpu, both named "tensorflow"), so that
 * {@link fusedBatchNormReluTraining} can call its kernels. False on the pure-JS backend.
 */
export function hasFusedBatchNorm(tf: TF): boolean {
  return nativeBackend(tf) !== undefined;
}

/**
 * Training-mode BatchNorm followed by ReLU as TensorFlow's own kernels, for speed: FusedBatchNormV3 + Relu forward,
 * ReluGrad + FusedBatchNormGradV3 backward (oneDNN on x86, cuDNN on GPU), one tape entry. That is 2 + 2
 * activation-sized ops instead of about 8 + 12 for {@link batchNormTraining} + {@link reluTraining}, and made
 * training steps 1.4-1.8x faster (benchmarks/training.ts). Values equal theirs to float32 rounding (the kernels
 * reduce in another order); test/resnet.test.ts checks values, moments and gradients against autodiff and float64
 * finite differences.
 *
 * FusedBatchNormV3 returns the Bessel-corrected batch variance (times n/(n-1), n = N*H*W); it is scaled back to the
 * biased variance before `onBatchMoments`, which receives what batchNormTraining passes (tensors valid only during
 * the call, not differentiated). Needs {@link hasFusedBatchNorm}. Call it inside tf.tidy (or tf.variableGrads):
 * intermediates are left to that scope.
 */
export function fusedBatchNormReluTraining(
  tf: TF,
  x: tfjs.Tensor4D,
  gamma: tfjs.Tensor1D,
  beta: tfjs.Tensor1D,
  onBatchMoments?: OnBatchMoments,
): tfjs.Tensor4D {
  const backend = nativeBackend(tf);
  if (backend === undefined) {
    throw new Error(`fusedBatchNormReluTraining needs native TensorFlow, active backend: ${tf.getBackend()}`);
  }
  const b = backend.binding;
  const typeAttr = { name: "T", type: b.TF_ATTR_TYPE, value: b.TF_FLOAT };
  const batchNormAttrs = [
    typeAttr,
    { name: "U", type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: "epsilon", type: b.TF_ATTR_FLOAT, value: BN_EPSILON },
    { name: "data_format", type: b.TF_ATTR_STRING, value: "NHWC" },
    { name: "is_training", type: b.TF_ATTR_BOOL, value: true },
  ];
  const [n, h, w] = x.shape;
  const count = n * h * w;
  const fused = tf.customGrad((...args: Array<tfjs.Tensor | tfjs.GradSaveFunc>) => {
    const [input, g, offset, save] = args as [tfjs.Tensor4D, tfjs.Tensor1D, tfjs.Tensor1D, tfjs.GradSaveFunc];
    const empty = tf.tensor1d([], "float32"); // no running statistics in: training mode uses the batch's own
    const [normalised, mean, correctedVariance, reserve1, reserve2, reserve3] = backend.executeMultipleOutputs(
      "FusedBatchNormV3",
      [...batchNormAttrs, { name: "exponential_avg_factor", type: b.TF_ATTR_FLOAT, value: 1 }],
      [input, g, offset, empty, empty],
      6,
    ) as [tfjs.Tensor4D, tfjs.Tensor1D, tfjs.Tensor1D, tfjs.Tensor, tfjs.Tensor, tfjs.Tensor];
    onBatchMoments?.(mean, tf.mul<tfjs.Tensor1D>(correctedVariance, (count - 1) / count));
    const y = tf.relu(normalised);
    // The three reserve spaces (the batch statistics and a kernel workspace) are what FusedBatchNormGradV3 reads.
    save([input, g, reserve1, reserve2, reserve3, y]);
    return {
      value: y,
      gradFunc: (dy: tfjs.Tensor, saved: tfjs.Tensor[]) => {
        type Saved = [tfjs.Tensor4D, tfjs.Tensor1D, tfjs.Tensor, tfjs.Tensor, tfjs.Tensor, tfjs.Tensor4D];
        const [sx, sGamma, r1, r2, r3, sy] = saved as Saved;
        // ReluGrad passes dy where its second input is > 0; relu(z) > 0 exactly where z > 0, as tf.relu's gradient.
        const dNormalised = backend.executeSingleOutput("ReluGrad", [typeAttr], [dy, sy]);
        const gradInputs = [dNormalised, sx, sGamma, r1, r2, r3];
        const [dx, dGamma, dBeta] = backend.executeMultipleOutputs(
          "FusedBatchNormGradV3",
          batchNormAttrs,
          gradInputs,
          5,
        );
        return [dx!, dGamma!, dBeta!];
      },
    };
  });
  return fused(x, gamma, beta);
}
