/**
 * The pre-activation ResNet of Hauser (2019), "On Residual Networks Learning a Perturbation from
 * Identity", written functionally with TensorFlow.js ops on tf.Variables so that every residual
 * block's input x_l and output x_{l+1} = x_l + F(x_l) can be handed to a probe as they are computed.
 *
 * Architecture for L blocks per section (any L >= 1), input H x W x C:
 *   stem:        3x3 conv, C -> 16 channels, stride 1, same padding, no bias
 *   section 1:   L blocks at H x W x 16
 *   transition:  1x1 conv, stride 2, 16 -> 32 channels, no bias, applied directly to x (no BN/ReLU)
 *   section 2:   L blocks at ceil(H/2) x ceil(W/2) x 32
 *   transition:  1x1 conv, stride 2, 32 -> 64 channels
 *   section 3:   L blocks at ceil(H/4) x ceil(W/4) x 64
 *   head:        BN -> ReLU -> global average pool -> dense (with bias) to `classes` logits
 * Block:  x + W2 * ReLU(BN2(W1 * ReLU(BN1(x))))   with W1, W2 3x3 convs, same padding, no bias.
 * MNIST 28x28x1 gives sections 28x28x16, 14x14x32, 7x7x64; CIFAR-10 32x32x3 gives 32x32x16,
 * 16x16x32, 8x8x64. The 1x1 stride-2 transitions read pixels (0,0), (0,2), ... so an odd size n
 * becomes ceil(n/2) without any padding.
 *
 * Depth: the paper's count is 6L+2 weighted layers = 1 stem conv + 2 convs x 3L blocks + 1 dense.
 * The two 1x1 transition convs are NOT counted by the paper (see {@link layerCounts}).
 *
 * BatchNorm: epsilon 1e-5. Training mode normalises with the batch mean and biased batch variance
 * over (N, H, W) and updates the moving averages as moving = 0.9 * moving + 0.1 * batch (PyTorch
 * "momentum 0.1", identical to Keras "momentum 0.9"; the biased batch variance is used, as Keras
 * does). Eval mode normalises with the moving averages. For speed, training-mode BatchNorm + ReLU
 * run as TensorFlow's fused kernels and their gradient kernels on native TensorFlow
 * ({@link fusedBatchNormReluTraining}) and with hand-written closed-form gradients on the pure-JS
 * backend ({@link batchNormTraining}, {@link reluTraining}); the two agree to float32 rounding, and
 * tests compare both with autodiff and with float64 finite differences.
 *
 * Initialisation: conv kernels and the dense kernel are He-normal, std = sqrt(2 / fan_in) with
 * fan_in = kernelH * kernelW * inChannels, drawn in JS from the seeded sfc32 generator in
 * science/rng.ts, so a seed gives bit-identical weights on every backend. Dense bias 0, BN gamma 1,
 * beta 0, moving mean 0, moving variance 1.
 *
 * This module never imports a backend: the caller passes the tf module (tfjs, tfjs-node, ...).
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type * as tfjs from "@tensorflow/tfjs";
import { Rng } from "./rng.ts";
import { nativeBackend } from "./native.ts";

/** The TensorFlow.js module, whichever backend package provided it. */
export type TF = typeof tfjs;

export const ARCHITECTURE = "preact-resnet-hauser2019";
export const BN_EPSILON = 1e-5;
/** Weight of the new batch statistic in the moving average (PyTorch convention). */
export const BN_MOVING_AVERAGE_UPDATE = 0.1;
export const SECTION_CHANNELS = [16, 32, 64] as const;

export interface ResNetConfig {
  /** [height, width, channels] of one input image. */
  readonly inputShape: readonly [number, number, number];
  /** L, the number of residual blocks in each of the three sections. */
  readonly blocksPerSection: number;
  readonly classes: number;
}

/**
 * Test hook: replaces the residual branch F of every block, so a block computes x + override(x).
 * Lets tests build blocks with known analytic behaviour while exercising the real forward pass.
 */
export type ResidualOverride = (section: number, block: number, x: tfjs.Tensor4D) => tfjs.Tensor4D;

export interface CreateResNetOptions extends ResNetConfig {
  readonly seed: number;
  readonly residualOverride?: ResidualOverride;
}

export type ParameterRole =
  | "conv-kernel"
  | "dense-kernel"
  | "dense-bias"
  | "bn-gamma"
  | "bn-beta"
  | "bn-moving-mean"
  | "bn-moving-variance";

export interface ParameterSpec {
  /** Stable name, e.g. "section2/block3/conv1"; used in saved artifacts and checkpoints. */
  readonly name: string;
  readonly shape: ReadonlyArray<number>;
  readonly role: ParameterRole;
}

export interface NamedVariable extends ParameterSpec {
  readonly variable: tfjs.Variable;
  /** Updated by the optimiser (everything except BN moving statistics). */
  readonly trainable: boolean;
  /** Receives weight decay: conv and dense kernels only (not BN gamma/beta, not the dense bias). */
  readonly decayed: boolean;
}

/**
 * Called once per residual block during a forward pass with its input x_l, its output
 * x_{l+1} = x_l + F(x_l) and the residual branch's output F(x_l) itself (the perturbation).
 * Sections are numbered 1..3 and blocks 1..L. The tensors belong to the forward pass and are
 * valid only during the call (in eval mode input and perturbation are disposed right after);
 * derive what you need inside it. Block l+1 receives as input the very tensor that was block l's
 * output.
 */
export type OnBlock = (
  section: number,
  block: number,
  xIn: tfjs.Tensor4D,
  xOut: tfjs.Tensor4D,
  perturbation: tfjs.Tensor4D,
) => void;

export interface ForwardOptions {
  /** true: batch statistics and moving-average updates; false: moving statistics (eval mode). */
  readonly training: boolean;
  readonly onBlock?: OnBlock;
}

export interface LayerCounts {
  /** The paper's depth, 6L+2 = stem conv + block convs + dense. */
  readonly paperWeightedLayers: number;
  readonly stemConvs: number;
  /** 2 per block, 3L blocks: 6L. */
  readonly blockConvs: number;
  readonly denseLayers: number;
  /** The two 1x1 stride-2 convs between sections, not counted by the paper. */
  readonly transitionConvs: number;
  /** Every layer with weights, 6L+4 = paperWeightedLayers + transitionConvs. */
  readonly allWeightedLayers: number;
  readonly residualBlocks: number;
}

export interface ResNet {
  readonly tf: TF;
  readonly config: ResNetConfig;
  /** All variables in a fixed order (the order used by saved artifacts). */
  readonly variables: ReadonlyArray<NamedVariable>;
  /**
   * Logits [N, classes] for images [N, H, W, C] already normalised (see {@link toModelInput}).
   * Call it inside tf.tidy (or tf.variableGrads): intermediates are left to the caller's scope.
   */
  forward(x: tfjs.Tensor4D, options: ForwardOptions): tfjs.Tensor2D;
  layerCounts(): LayerCounts;
  /** [height, width, channels] of the activations in sections 1, 2, 3. */
  sectionShapes(): ReadonlyArray<readonly [number, number, number]>;
  dispose(): void;
}

export function layerCounts(blocksPerSection: number): LayerCounts {
  const L = blocksPerSection;
  return {
    paperWeightedLayers: 6 * L + 2,
    stemConvs: 1,
    blockConvs: 6 * L,
    denseLayers: 1,
    transitionConvs: 2,
    allWeightedLayers: 6 * L + 4,
    residualBlocks: 3 * L,
  };
}

export function sectionShapes(inputShape: readonly [number, number, number]): Array<[number, number, number]> {
  const [h, w] = inputShape;
  return SECTION_CHANNELS.map((c, i): [number, number, number] => [
    Math.ceil(h / 2 ** i),
    Math.ceil(w / 2 ** i),
    c,
  ]);
}

function validateConfig(config: ResNetConfig): void {
  const { inputShape, blocksPerSection, classes } = config;
  if (inputShape.length !== 3 || !inputShape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new RangeError(`inputShape must be [H, W, C] positive integers, got ${JSON.stringify(inputShape)}`);
  }
  if (!Number.isInteger(blocksPerSection) || blocksPerSection < 1) {
    throw new RangeError(`blocksPerSection must be an integer >= 1, got ${blocksPerSection}`);
  }
  if (!Number.isInteger(classes) || classes < 2) throw new RangeError(`classes must be >= 2, got ${classes}`);
}

/** The parameter list in its canonical order. */
export function parameterSpecs(config: ResNetConfig): ParameterSpec[] {
  validateConfig(config);
  const [, , inChannels] = config.inputShape;
  const specs: ParameterSpec[] = [];
  const batchNorm = (prefix: string, c: number): void => {
    specs.push({ name: `${prefix}/gamma`, shape: [c], role: "bn-gamma" });
    specs.push({ name: `${prefix}/beta`, shape: [c], role: "bn-beta" });
    specs.push({ name: `${prefix}/movingMean`, shape: [c], role: "bn-moving-mean" });
    specs.push({ name: `${prefix}/movingVariance`, shape: [c], role: "bn-moving-variance" });
  };
  specs.push({ name: "stem/conv", shape: [3, 3, inChannels, SECTION_CHANNELS[0]], role: "conv-kernel" });
  SECTION_CHANNELS.forEach((c, i) => {
    const section = i + 1;
    if (i > 0) {
      specs.push({ name: `transition${section}/conv`, shape: [1, 1, c / 2, c], role: "conv-kernel" });
    }
    for (let block = 1; block <= config.blocksPerSection; block++) {
      const prefix = `section${section}/block${block}`;
      batchNorm(`${prefix}/bn1`, c);
      specs.push({ name: `${prefix}/conv1`, shape: [3, 3, c, c], role: "conv-kernel" });
      batchNorm(`${prefix}/bn2`, c);
      specs.push({ name: `${prefix}/conv2`, shape: [3, 3, c, c], role: "conv-kernel" });
    }
  });
  const last = SECTION_CHANNELS[2];
  batchNorm("head/bn", last);
  specs.push({ name: "head/dense/kernel", shape: [last, config.classes], role: "dense-kernel" });
  specs.push({ name: "head/dense/bias", shape: [config.classes], role: "dense-bias" });
  return specs;
}

const sizeOf = (shape: ReadonlyArray<number>): number => shape.reduce((a, b) => a * b, 1);

/** Initial value of one parameter; kernels are He-normal draws from `rng`, in spec order. */
function initialValue(spec: ParameterSpec, rng: Rng): Float32Array {
  const values = new Float32Array(sizeOf(spec.shape));
  switch (spec.role) {
    case "conv-kernel":
    case "dense-kernel": {
      const fanIn = sizeOf(spec.shape.slice(0, -1));
      const std = Math.sqrt(2 / fanIn);
      for (let i = 0; i < values.length; i++) values[i] = rng.nextNormal() * std;
      break;
    }
    case "bn-gamma":
    case "bn-moving-variance":
      values.fill(1);
      break;
    case "dense-bias":
    case "bn-beta":
    case "bn-moving-mean":
      break; // zeros
  }
  return values;
}

/** A fresh, He-initialised model; the same seed gives the same weights on every backend. */
export function createResNet(tf: TF, options: CreateResNetOptions): ResNet {
  const config: ResNetConfig = {
    inputShape: options.inputShape,
    blocksPerSection: options.blocksPerSection,
    classes: options.classes,
  };
  const rng = Rng.fromSeed(options.seed);
  return buildResNet(tf, config, (spec) => initialValue(spec, rng), options.residualOverride);
}

function buildResNet(
  tf: TF,
  config: ResNetConfig,
  valueOf: (spec: ParameterSpec) => Float32Array,
  residualOverride: ResidualOverride | undefined,
): ResNet {
  const specs = parameterSpecs(config);
  const variables: NamedVariable[] = [];
  try {
    for (const spec of specs) {
      const trainable = spec.role !== "bn-moving-mean" && spec.role !== "bn-moving-variance";
      const values = valueOf(spec);
      const variable = tf.tidy(() => tf.variable(tf.tensor(values, [...spec.shape], "float32"), trainable));
      variables.push({
        ...spec,
        variable,
        trainable,
        decayed: spec.role === "conv-kernel" || spec.role === "dense-kernel",
      });
    }
  } catch (error) {
    for (const v of variables) v.variable.dispose();
    throw error;
  }
  const byName = new Map(variables.map((v) => [v.name, v.variable]));
  const param = (name: string): tfjs.Variable => {
    const v = byName.get(name);
    if (v === undefined) throw new Error(`internal: no parameter ${name}`);
    return v;
  };

  const conv = (x: tfjs.Tensor4D, name: string, stride: 1 | 2): tfjs.Tensor4D =>
    tf.conv2d(x, param(name) as tfjs.Tensor4D, stride, stride === 1 ? "same" : "valid");

  /** moving = 0.9 * moving + 0.1 * batch, for the batch mean and biased batch variance of BN `prefix`. */
  const updateMovingAverages = (prefix: string) => (mean: tfjs.Tensor1D, variance: tfjs.Tensor1D) => {
    const movingMean = param(`${prefix}/movingMean`);
    const movingVariance = param(`${prefix}/movingVariance`);
    const m = BN_MOVING_AVERAGE_UPDATE;
    movingMean.assign(tf.add(tf.mul(movingMean, 1 - m), tf.mul(mean, m)));
    movingVariance.assign(tf.add(tf.mul(movingVariance, 1 - m), tf.mul(variance, m)));
  };

  /**
   * BN `prefix` followed by ReLU. Eval mode: the moving statistics (tf.batchNorm, itself TensorFlow's
   * FusedBatchNorm kernel on native backends). Training mode: one fused-kernel tape entry on native TensorFlow
   * ({@link fusedBatchNormReluTraining}), the closed-form gradients elsewhere ({@link batchNormTraining},
   * {@link reluTraining}); both update the moving averages.
   */
  const bnRelu = (x: tfjs.Tensor4D, prefix: string, training: boolean): tfjs.Tensor4D => {
    const gamma = param(`${prefix}/gamma`) as tfjs.Tensor1D;
    const beta = param(`${prefix}/beta`) as tfjs.Tensor1D;
    if (!training) {
      const movingMean = param(`${prefix}/movingMean`) as tfjs.Tensor1D;
      const movingVariance = param(`${prefix}/movingVariance`) as tfjs.Tensor1D;
      return tf.relu(tf.batchNorm(x, movingMean, movingVariance, beta, gamma, BN_EPSILON));
    }
    const onBatchMoments = updateMovingAverages(prefix);
    if (hasFusedBatchNorm(tf)) return fusedBatchNormReluTraining(tf, x, gamma, beta, onBatchMoments);
    return reluTraining(tf, batchNormTraining(tf, x, gamma, beta, onBatchMoments));
  };

  const residual = (x: tfjs.Tensor4D, section: number, block: number, training: boolean): tfjs.Tensor4D => {
    if (residualOverride !== undefined) return residualOverride(section, block, x);
    const prefix = `section${section}/block${block}`;
    const h = conv(bnRelu(x, `${prefix}/bn1`, training), `${prefix}/conv1`, 1);
    return conv(bnRelu(h, `${prefix}/bn2`, training), `${prefix}/conv2`, 1);
  };

  const forward = (x: tfjs.Tensor4D, options: ForwardOptions): tfjs.Tensor2D => {
    const [, h, w, c] = x.shape;
    const [eh, ew, ec] = config.inputShape;
    if (h !== eh || w !== ew || c !== ec) {
      throw new RangeError(`forward: expected images ${eh}x${ew}x${ec}, got ${h}x${w}x${c}`);
    }
    let act = conv(x, "stem/conv", 1);
    for (let section = 1; section <= SECTION_CHANNELS.length; section++) {
      if (section > 1) act = conv(act, `transition${section}/conv`, 2);
      for (let block = 1; block <= config.blocksPerSection; block++) {
        const input = act;
        const perturbation = tf.tidy(() => residual(input, section, block, options.training));
        const out: tfjs.Tensor4D = tf.add(input, perturbation);
        options.onBlock?.(section, block, input, out, perturbation);
        // Eval mode frees each block's tensors at once, so memory does not grow with depth. In
        // training the gradient tape still refers to them; the caller's tf.tidy frees them instead.
        if (!options.training) {
          input.dispose();
          perturbation.dispose();
        }
        act = out;
      }
    }
    const pooled = tf.mean(bnRelu(act, "head/bn", options.training), [1, 2]) as tfjs.Tensor2D;
    return tf.add(tf.matMul(pooled, param("head/dense/kernel") as tfjs.Tensor2D), param("head/dense/bias"));
  };

  let disposed = false;
  return {
    tf,
    config,
    variables,
    forward,
    layerCounts: () => layerCounts(config.blocksPerSection),
    sectionShapes: () => sectionShapes(config.inputShape),
    dispose: () => {
      if (disposed) return;
      disposed = true;
      for (const v of variables) v.variable.dispose();
    },
  };
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
  onBatchMoments?: (mean: tfjs.Tensor1D, variance: tfjs.Tensor1D) => void,
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
  return relu(x) as tfjs.Tensor4D;
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
  onBatchMoments?: (mean: tfjs.Tensor1D, variance: tfjs.Tensor1D) => void,
): tfjs.Tensor4D {
  const backend = nativeBackend(tf);
  if (backend === undefined) throw new Error(`fusedBatchNormReluTraining needs native TensorFlow, active backend: ${tf.getBackend()}`);
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
    onBatchMoments?.(mean, tf.mul(correctedVariance, (count - 1) / count) as tfjs.Tensor1D);
    const y = tf.relu(normalised);
    // The three reserve spaces (the batch statistics and a kernel workspace) are what FusedBatchNormGradV3 reads.
    save([input, g, reserve1, reserve2, reserve3, y]);
    return {
      value: y,
      gradFunc: (dy: tfjs.Tensor, saved: tfjs.Tensor[]) => {
        const [sx, sGamma, r1, r2, r3, sy] = saved as [tfjs.Tensor4D, tfjs.Tensor1D, tfjs.Tensor, tfjs.Tensor, tfjs.Tensor, tfjs.Tensor4D];
        // ReluGrad passes dy where its second input is > 0; relu(z) > 0 exactly where z > 0, as tf.relu's gradient.
        const dNormalised = backend.executeSingleOutput("ReluGrad", [typeAttr], [dy, sy]);
        const [dx, dGamma, dBeta] = backend.executeMultipleOutputs("FusedBatchNormGradV3", batchNormAttrs, [dNormalised, sx, sGamma, r1, r2, r3], 5);
        return [dx!, dGamma!, dBeta!];
      },
    };
  });
  return fused(x, gamma, beta) as tfjs.Tensor4D;
}

/**
 * Normalises raw pixels on the backend: (pixels / 255 - mean[c]) / std[c] per channel, where
 * `pixels` holds 0..255 values (int32 or float32) in NHWC layout and mean/std are on the 0..1 scale.
 */
export function toModelInput(
  tf: TF,
  pixels: tfjs.Tensor4D,
  mean: ReadonlyArray<number>,
  std: ReadonlyArray<number>,
): tfjs.Tensor4D {
  const channels = pixels.shape[3];
  if (mean.length !== channels || std.length !== channels) {
    throw new RangeError(`toModelInput: need ${channels} means and stds, got ${mean.length} and ${std.length}`);
  }
  return tf.tidy(() =>
    tf.div(tf.sub(tf.div(tf.cast(pixels, "float32"), 255), tf.tensor1d([...mean])), tf.tensor1d([...std])),
  );
}

// ---------------------------------------------------------------------------------------------
// Weights as a standard tfjs weights manifest + binary, and the model artifact (model.json + weights.bin)

export type WeightSpecs = tfjs.io.WeightsManifestEntry[];

/** Encodes the given named tensors (in order) with tf.io.encodeWeights. */
export async function encodeNamedTensors(
  tf: TF,
  tensors: ReadonlyArray<{ readonly name: string; readonly tensor: tfjs.Tensor }>,
): Promise<{ specs: WeightSpecs; data: Uint8Array }> {
  const { data, specs } = await tf.io.encodeWeights(tensors.map(({ name, tensor }) => ({ name, tensor })));
  return { specs, data: new Uint8Array(data) };
}

/**
 * Decodes bytes written by {@link encodeNamedTensors}. The caller owns (must dispose) the tensors.
 */
export function decodeNamedTensors(tf: TF, specs: WeightSpecs, data: Uint8Array): Map<string, tfjs.Tensor> {
  const buffer = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
  return new Map(Object.entries(tf.io.decodeWeights(buffer, specs)));
}

/** Copies values into the model's variables; names, shapes and dtypes must match exactly and completely. */
export function assignVariables(model: ResNet, values: ReadonlyMap<string, tfjs.Tensor>): void {
  for (const v of model.variables) {
    const t = values.get(v.name);
    if (t === undefined) throw new Error(`weights: missing ${v.name}`);
    if (t.dtype !== "float32" || !sameShape(t.shape, v.shape)) {
      throw new Error(`weights: ${v.name} is ${t.dtype}[${t.shape}], expected float32[${v.shape}]`);
    }
  }
  for (const v of model.variables) v.variable.assign(values.get(v.name)!);
}

const sameShape = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

export const MODEL_JSON = "model.json";
export const WEIGHTS_BIN = "weights.bin";

/** model.json: a tfjs weights manifest plus our own topology description. */
export interface ResNetModelJson {
  readonly format: typeof ARCHITECTURE;
  readonly generatedBy: string;
  readonly topology: {
    readonly arch: typeof ARCHITECTURE;
    readonly blocksPerSection: number;
    readonly inputShape: readonly [number, number, number];
    readonly classes: number;
    readonly bnEpsilon: number;
    readonly bnMovingAverageUpdate: number;
  };
  readonly weightsManifest: ReadonlyArray<{ readonly paths: ReadonlyArray<string>; readonly weights: WeightSpecs }>;
}

/** The model as artifact contents: model.json (object) and weights.bin (bytes). */
export async function serializeResNet(model: ResNet): Promise<{ modelJson: ResNetModelJson; weightsBin: Uint8Array }> {
  const { specs, data } = await encodeNamedTensors(
    model.tf,
    model.variables.map((v) => ({ name: v.name, tensor: v.variable })),
  );
  const modelJson: ResNetModelJson = {
    format: ARCHITECTURE,
    generatedBy: `TensorFlow.js tfjs-core v${model.tf.version_core}`,
    topology: {
      arch: ARCHITECTURE,
      blocksPerSection: model.config.blocksPerSection,
      inputShape: model.config.inputShape,
      classes: model.config.classes,
      bnEpsilon: BN_EPSILON,
      bnMovingAverageUpdate: BN_MOVING_AVERAGE_UPDATE,
    },
    weightsManifest: [{ paths: [WEIGHTS_BIN], weights: specs }],
  };
  return { modelJson, weightsBin: data };
}

/** Rebuilds a model from artifact contents written by {@link serializeResNet}. */
export function deserializeResNet(tf: TF, modelJson: ResNetModelJson, weightsBin: Uint8Array): ResNet {
  const { topology } = modelJson;
  if (modelJson.format !== ARCHITECTURE || topology.arch !== ARCHITECTURE) {
    throw new Error(`model.json: unsupported format ${String(modelJson.format)}`);
  }
  const config: ResNetConfig = {
    inputShape: [topology.inputShape[0], topology.inputShape[1], topology.inputShape[2]],
    blocksPerSection: topology.blocksPerSection,
    classes: topology.classes,
  };
  const specs = modelJson.weightsManifest.flatMap((group) => group.weights);
  const decoded = decodeNamedTensors(tf, specs, weightsBin);
  try {
    const model = buildResNet(tf, config, (spec) => new Float32Array(sizeOf(spec.shape)), undefined);
    try {
      assignVariables(model, decoded);
    } catch (error) {
      model.dispose();
      throw error;
    }
    return model;
  } finally {
    for (const t of decoded.values()) t.dispose();
  }
}

/** Writes bytes to `file` atomically: a temporary file in the same directory, then rename. */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  } catch (error) {
    await fs.rm(tmp, { force: true });
    throw error;
  }
}

/** Saves model.json and weights.bin into `dir` (created if needed); weights first, model.json last. */
export async function saveResNet(model: ResNet, dir: string): Promise<void> {
  const { modelJson, weightsBin } = await serializeResNet(model);
  await fs.mkdir(dir, { recursive: true });
  await writeFileAtomic(path.join(dir, WEIGHTS_BIN), weightsBin);
  await writeFileAtomic(path.join(dir, MODEL_JSON), JSON.stringify(modelJson));
}

/** Loads a model saved by {@link saveResNet}. */
export async function loadResNet(tf: TF, dir: string): Promise<ResNet> {
  const modelJson = JSON.parse(await fs.readFile(path.join(dir, MODEL_JSON), "utf8")) as ResNetModelJson;
  const paths = modelJson.weightsManifest.flatMap((group) => group.paths);
  const parts = await Promise.all(paths.map((p) => fs.readFile(path.join(dir, p))));
  return deserializeResNet(tf, modelJson, new Uint8Array(Buffer.concat(parts)));
}
