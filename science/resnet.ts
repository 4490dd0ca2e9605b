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
 * BatchNorm (epsilon 1e-5, moving averages updated with weight 0.1 in training mode) and the ReLU after it run
 * through science/batchnorm.ts: the moving statistics in eval mode, TensorFlow's fused kernels or closed-form
 * gradients in training mode.
 *
 * Initialisation: conv kernels and the dense kernel are He-normal, std = sqrt(2 / fan_in) with
 * fan_in = kernelH * kernelW * inChannels, drawn in JS from the seeded sfc32 generator in
 * science/rng.ts, so a seed gives bit-identical weights on every backend. Dense bias 0, BN gamma 1,
 * beta 0, moving mean 0, moving variance 1.
 *
 * Saving and loading: science/model-io.ts. This module never imports a backend: the caller passes the tf module
 * (tfjs, tfjs-node, ...).
 */
import type * as tfjs from "@tensorflow/tfjs";
import { BN_MOVING_AVERAGE_UPDATE, batchNormReluInference, batchNormReluTraining } from "./batchnorm.ts";
import { Rng } from "./rng.ts";

/** The TensorFlow.js module, whichever backend package provided it. */
export type TF = typeof tfjs;

export const ARCHITECTURE = "preact-resnet-hauser2019";
const SECTION_CHANNELS = [16, 32, 64] as const;

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
  "conv-kernel" | "dense-kernel" | "dense-bias" | "bn-gamma" | "bn-beta" | "bn-moving-mean" | "bn-moving-variance";

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
  return SECTION_CHANNELS.map((c, i): [number, number, number] => [Math.ceil(h / 2 ** i), Math.ceil(w / 2 ** i), c]);
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

/** A model of `config` whose parameters are all zero, to be overwritten with saved weights (science/model-io.ts). */
export function createZeroResNet(tf: TF, config: ResNetConfig): ResNet {
  return buildResNet(tf, config, (spec) => new Float32Array(sizeOf(spec.shape)), undefined);
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

  /** BN `prefix` followed by ReLU; training mode also updates the moving averages. */
  const bnRelu = (x: tfjs.Tensor4D, prefix: string, training: boolean): tfjs.Tensor4D => {
    const gamma = param(`${prefix}/gamma`) as tfjs.Tensor1D;
    const beta = param(`${prefix}/beta`) as tfjs.Tensor1D;
    if (training) return batchNormReluTraining(tf, x, gamma, beta, updateMovingAverages(prefix));
    const movingMean = param(`${prefix}/movingMean`) as tfjs.Tensor1D;
    const movingVariance = param(`${prefix}/movingVariance`) as tfjs.Tensor1D;
    return batchNormReluInference(tf, x, movingMean, movingVariance, gamma, beta);
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
    const pooled = tf.mean<tfjs.Tensor2D>(bnRelu(act, "head/bn", options.training), [1, 2]);
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
