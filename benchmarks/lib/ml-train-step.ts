/**
 * One training step of science/training.ts, rebuilt from its pieces so that the benchmark can time the phases
 * separately and try variants side by side. With the default variant the step is the same op sequence as
 * trainModel's (same data path, model.forward, loss, hand-written SGD with momentum and weight decay), and
 * test/bench-ml.test.ts checks that it gives bit-identical weights to trainModel on the native backend.
 *
 * Variants (not used by the pipeline):
 *  - `groupedSgd` (a proposed speedup): the SGD update of all variables of one shape (and decay flag) as one
 *    stacked update (stack gradients and weights, 5 ops, unstack) with the velocity kept stacked, instead of ~7 tiny
 *    ops per variable. Same float32 operations in the same order per element, so bit-identical results.
 *  - `handWrittenBnRelu` (a baseline): training-mode BatchNorm + ReLU with the closed-form tfjs-level gradients that
 *    the pure-JS backend uses (about 8 forward and 12 backward full-size ops per BN-ReLU), as native training did
 *    before it moved to TensorFlow's fused kernels; shows what those save. Equal up to float32 rounding.
 */
import type * as tfjs from "@tensorflow/tfjs";
import {
  BN_MOVING_AVERAGE_UPDATE,
  batchNormTraining,
  fusedBatchNormReluTraining,
  reluTraining,
} from "../../science/batchnorm.ts";
import { SECTION_CHANNELS, type NamedVariable, type ResNet, type TF, toModelInput } from "../../science/resnet.ts";

export interface StepVariant {
  readonly groupedSgd: boolean;
  readonly handWrittenBnRelu: boolean;
}

export const CURRENT: StepVariant = { groupedSgd: false, handWrittenBnRelu: false };

export const VARIANTS: Readonly<Record<string, StepVariant>> = {
  current: CURRENT,
  groupedSgd: { groupedSgd: true, handWrittenBnRelu: false },
  handWrittenBnRelu: { groupedSgd: false, handWrittenBnRelu: true },
};

export interface StepData {
  /** All training images, int32 [count, H, W, C] with 0..255 values (as trainModel holds them). */
  readonly images: tfjs.Tensor4D;
  /** int32 [count] */
  readonly labels: tfjs.Tensor1D;
  readonly mean: ReadonlyArray<number>;
  readonly std: ReadonlyArray<number>;
  readonly classes: number;
}

export interface StepHyper {
  readonly momentum: number;
  readonly weightDecay: number;
}

/** The parts of one step, each runnable alone (for phase timings) or chained (a whole step). */
export interface Stepper {
  /** Gather and normalise a batch (kept on the backend; dispose it). */
  batch(indices: Int32Array): { x: tfjs.Tensor4D; labels: tfjs.Tensor1D };
  /** Training-mode forward pass only (moving averages are updated as in a real step). */
  forward(x: tfjs.Tensor4D): tfjs.Tensor2D;
  /** Loss and gradients of the trainable variables. */
  gradients(x: tfjs.Tensor4D, labels: tfjs.Tensor1D): { loss: tfjs.Scalar; errors: tfjs.Scalar; grads: tfjs.NamedTensorMap };
  /** The SGD-with-momentum update. */
  update(grads: tfjs.NamedTensorMap, rate: number): void;
  /** One whole step as in trainModel; returns the batch's summed loss and error count (caller disposes). */
  step(indices: Int32Array, rate: number): { lossSum: tfjs.Scalar; errors: tfjs.Scalar };
  /** Velocities by variable name (copies the caller must dispose), for comparisons. */
  velocities(): Map<string, tfjs.Tensor>;
  dispose(): void;
}

export function createStepper(tf: TF, model: ResNet, data: StepData, hyper: StepHyper, variant: StepVariant = CURRENT): Stepper {
  const trainable = model.variables.filter((v) => v.trainable);
  const optimizer = variant.groupedSgd ? groupedMomentum(tf, trainable, hyper) : perVariableMomentum(tf, trainable, hyper);
  const forwardFn = variant.handWrittenBnRelu
    ? forwardTraining(tf, model, handWrittenBatchNormRelu)
    : (x: tfjs.Tensor4D) => model.forward(x, { training: true });

  const batch = (indices: Int32Array) =>
    tf.tidy(() => {
      const index = tf.tensor1d(indices, "int32");
      const pixels = tf.gather(data.images, index) as tfjs.Tensor4D;
      return { x: toModelInput(tf, pixels, data.mean, data.std), labels: tf.gather(data.labels, index) as tfjs.Tensor1D };
    });

  const gradients = (x: tfjs.Tensor4D, labels: tfjs.Tensor1D) => {
    let errors: tfjs.Scalar | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const logits = forwardFn(x);
      errors = tf.keep(tf.sum(tf.cast(tf.notEqual(tf.argMax(logits, 1), labels), "int32"))) as tfjs.Scalar;
      return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, data.classes), logits) as tfjs.Scalar;
    }, trainable.map((v) => v.variable));
    return { loss: value, errors: errors!, grads };
  };

  return {
    batch,
    forward: forwardFn,
    gradients,
    update: optimizer.update,
    step: (indices, rate) =>
      tf.tidy(() => {
        const { x, labels } = batch(indices);
        const { loss, errors, grads } = gradients(x, labels);
        optimizer.update(grads, rate);
        const kept = tf.clone(errors);
        errors.dispose(); // tf.keep exempted it from every tidy
        return { lossSum: tf.mul(loss, indices.length) as tfjs.Scalar, errors: kept as tfjs.Scalar };
      }),
    velocities: optimizer.velocities,
    dispose: optimizer.dispose,
  };
}

interface Momentum {
  update(grads: tfjs.NamedTensorMap, rate: number): void;
  velocities(): Map<string, tfjs.Tensor>;
  dispose(): void;
}

/** trainModel's update, verbatim: g = grad (+ wd * w for kernels); v = momentum * v + g; w = w - rate * v. */
function perVariableMomentum(tf: TF, trainable: ReadonlyArray<NamedVariable>, hyper: StepHyper): Momentum {
  const velocity = new Map(trainable.map((v) => [v.name, tf.tidy(() => tf.variable(tf.zerosLike(v.variable), false))]));
  return {
    update: (grads, rate) =>
      tf.tidy(() => {
        for (const p of trainable) {
          const v = velocity.get(p.name)!;
          const g = p.decayed ? tf.add(grads[p.variable.name]!, tf.mul(p.variable, hyper.weightDecay)) : grads[p.variable.name]!;
          v.assign(tf.add(tf.mul(v, hyper.momentum), g));
          p.variable.assign(tf.sub(p.variable, tf.mul(v, rate)));
        }
      }),
    velocities: () => new Map([...velocity].map(([name, v]) => [name, tf.clone(v)])),
    dispose: () => velocity.forEach((v) => v.dispose()),
  };
}

/**
 * The same update on stacks: variables with equal shape and decay flag form a group whose velocity is one
 * [members, ...shape] variable. Per group: 2 stacks, 5 arithmetic ops (3 without decay), 1 unstack; assignments
 * of the unstacked weights are free (no kernel). Element by element the float32 operations are those of
 * {@link perVariableMomentum}, so the results are bit-identical.
 */
function groupedMomentum(tf: TF, trainable: ReadonlyArray<NamedVariable>, hyper: StepHyper): Momentum {
  const byKey = new Map<string, NamedVariable[]>();
  for (const v of trainable) {
    const key = `${v.decayed}:${v.shape.join("x")}`;
    byKey.set(key, [...(byKey.get(key) ?? []), v]);
  }
  const groups = [...byKey.values()].map((members) => ({
    members,
    decayed: members[0]!.decayed,
    velocity: tf.tidy(() => tf.variable(tf.zeros([members.length, ...members[0]!.shape]), false)),
  }));
  return {
    update: (grads, rate) =>
      tf.tidy(() => {
        for (const { members, decayed, velocity } of groups) {
          const w = tf.stack(members.map((m) => m.variable));
          const grad = tf.stack(members.map((m) => grads[m.variable.name]!));
          const g = decayed ? tf.add(grad, tf.mul(w, hyper.weightDecay)) : grad;
          velocity.assign(tf.add(tf.mul(velocity, hyper.momentum), g));
          const next = tf.unstack(tf.sub(w, tf.mul(velocity, rate)));
          members.forEach((m, i) => m.variable.assign(next[i]!));
        }
      }),
    velocities: () =>
      new Map(
        groups.flatMap(({ members, velocity }) => {
          const parts = tf.unstack(velocity);
          return members.map((m, i): [string, tfjs.Tensor] => [m.name, parts[i]!]);
        }),
      ),
    dispose: () => groups.forEach((g) => g.velocity.dispose()),
  };
}

/** BN (training mode, moving averages updated) followed by ReLU. */
export type BatchNormRelu = (tf: TF, x: tfjs.Tensor4D, bn: BatchNormParams) => tfjs.Tensor4D;

export interface BatchNormParams {
  readonly gamma: tfjs.Variable;
  readonly beta: tfjs.Variable;
  readonly movingMean: tfjs.Variable;
  readonly movingVariance: tfjs.Variable;
}

/** resnet.ts's moving-average update with the biased batch variance. */
function updateMovingAverages(tf: TF, bn: BatchNormParams, mean: tfjs.Tensor, variance: tfjs.Tensor): void {
  const m = BN_MOVING_AVERAGE_UPDATE;
  bn.movingMean.assign(tf.add(tf.mul(bn.movingMean, 1 - m), tf.mul(mean, m)));
  bn.movingVariance.assign(tf.add(tf.mul(bn.movingVariance, 1 - m), tf.mul(variance, m)));
}

/** What science/resnet.ts does in training mode on native TensorFlow (TensorFlow's fused kernels). */
export const nativeBatchNormRelu: BatchNormRelu = (tf, x, bn) =>
  fusedBatchNormReluTraining(tf, x, bn.gamma as tfjs.Tensor1D, bn.beta as tfjs.Tensor1D, (mean, variance) =>
    updateMovingAverages(tf, bn, mean, variance),
  );

/** What science/resnet.ts does in training mode on the pure-JS backend (closed-form gradients at the tfjs level). */
export const handWrittenBatchNormRelu: BatchNormRelu = (tf, x, bn) =>
  reluTraining(
    tf,
    batchNormTraining(tf, x, bn.gamma as tfjs.Tensor1D, bn.beta as tfjs.Tensor1D, (mean, variance) =>
      updateMovingAverages(tf, bn, mean, variance),
    ),
  );

/**
 * resnet.ts's forward pass in training mode with a replaceable BN-ReLU: stem conv, 3 sections of L blocks
 * x + conv(bnRelu(conv(bnRelu(x)))), 1x1 stride-2 transitions, head BN-ReLU, global average pool, dense. With
 * {@link nativeBatchNormRelu} it is model.forward on native TensorFlow op for op (test/bench-ml.test.ts checks it).
 */
export function forwardTraining(tf: TF, model: ResNet, bnRelu: BatchNormRelu): (x: tfjs.Tensor4D) => tfjs.Tensor2D {
  const byName = new Map(model.variables.map((v) => [v.name, v.variable]));
  const param = (name: string): tfjs.Variable => {
    const v = byName.get(name);
    if (v === undefined) throw new Error(`no parameter ${name}`);
    return v;
  };
  const bnParams = (prefix: string): BatchNormParams => ({
    gamma: param(`${prefix}/gamma`),
    beta: param(`${prefix}/beta`),
    movingMean: param(`${prefix}/movingMean`),
    movingVariance: param(`${prefix}/movingVariance`),
  });
  const conv = (x: tfjs.Tensor4D, name: string, stride: 1 | 2): tfjs.Tensor4D =>
    tf.conv2d(x, param(name) as tfjs.Tensor4D, stride, stride === 1 ? "same" : "valid");
  return (x) => {
    let act = conv(x, "stem/conv", 1);
    for (let section = 1; section <= SECTION_CHANNELS.length; section++) {
      if (section > 1) act = conv(act, `transition${section}/conv`, 2);
      for (let block = 1; block <= model.config.blocksPerSection; block++) {
        const input = act;
        const prefix = `section${section}/block${block}`;
        act = tf.tidy(() => {
          const h = conv(bnRelu(tf, input, bnParams(`${prefix}/bn1`)), `${prefix}/conv1`, 1);
          return tf.add(input, conv(bnRelu(tf, h, bnParams(`${prefix}/bn2`)), `${prefix}/conv2`, 1));
        });
      }
    }
    const pooled = tf.mean(bnRelu(tf, act, bnParams("head/bn")), [1, 2]) as tfjs.Tensor2D;
    return tf.add(tf.matMul(pooled, param("head/dense/kernel") as tfjs.Tensor2D), param("head/dense/bias"));
  };
}
