/**
 * One training step of science/training.ts, rebuilt from its pieces so that the benchmark can time the phases
 * (batch, forward, backward, update) separately: the same op sequence as trainModel's (same data path,
 * model.forward, loss, hand-written SGD with momentum and weight decay). benchmarks/test/ml.test.ts checks that it
 * gives bit-identical weights to trainModel on the native backend, so the phases are those of the real step.
 */
import type * as tfjs from "@tensorflow/tfjs";
import { toModelInput, type ResNet, type TF } from "../../science/resnet.ts";

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
  readonly batch: (indices: Int32Array) => { x: tfjs.Tensor4D; labels: tfjs.Tensor1D };
  /** Training-mode forward pass only (moving averages are updated as in a real step). */
  readonly forward: (x: tfjs.Tensor4D) => tfjs.Tensor2D;
  /** Loss and gradients of the trainable variables. */
  readonly gradients: (
    x: tfjs.Tensor4D,
    labels: tfjs.Tensor1D,
  ) => { loss: tfjs.Scalar; errors: tfjs.Scalar; grads: tfjs.NamedTensorMap };
  /** One whole step as in trainModel; returns the batch's summed loss and error count (caller disposes). */
  readonly step: (indices: Int32Array, rate: number) => { lossSum: tfjs.Scalar; errors: tfjs.Scalar };
  readonly dispose: () => void;
}

export function createStepper(tf: TF, model: ResNet, data: StepData, hyper: StepHyper): Stepper {
  const trainable = model.variables.filter((v) => v.trainable);
  const velocity = new Map(trainable.map((v) => [v.name, tf.tidy(() => tf.variable(tf.zerosLike(v.variable), false))]));
  const forward = (x: tfjs.Tensor4D) => model.forward(x, { training: true });

  const batch = (indices: Int32Array) =>
    tf.tidy(() => {
      const index = tf.tensor1d(indices, "int32");
      const pixels = tf.gather<tfjs.Tensor4D>(data.images, index);
      return { x: toModelInput(tf, pixels, data.mean, data.std), labels: tf.gather<tfjs.Tensor1D>(data.labels, index) };
    });

  const gradients = (x: tfjs.Tensor4D, labels: tfjs.Tensor1D) => {
    let errors: tfjs.Scalar | undefined;
    const { value, grads } = tf.variableGrads(
      () => {
        const logits = forward(x);
        errors = tf.keep(tf.sum<tfjs.Scalar>(tf.cast(tf.notEqual(tf.argMax(logits, 1), labels), "int32")));
        return tf.losses.softmaxCrossEntropy<tfjs.Tensor, tfjs.Scalar>(tf.oneHot(labels, data.classes), logits);
      },
      trainable.map((v) => v.variable),
    );
    return { loss: value, errors: errors!, grads };
  };

  /** trainModel's update, verbatim: g = grad (+ wd * w for kernels); v = momentum * v + g; w = w - rate * v. */
  const update = (grads: tfjs.NamedTensorMap, rate: number) => {
    for (const p of trainable) {
      const v = velocity.get(p.name)!;
      const grad = grads[p.variable.name]!;
      const g = p.decayed ? tf.add(grad, tf.mul(p.variable, hyper.weightDecay)) : grad;
      v.assign(tf.add(tf.mul(v, hyper.momentum), g));
      p.variable.assign(tf.sub(p.variable, tf.mul(v, rate)));
    }
  };

  return {
    batch,
    forward,
    gradients,
    step: (indices, rate) =>
      tf.tidy(() => {
        const { x, labels } = batch(indices);
        const { loss, errors, grads } = gradients(x, labels);
        update(grads, rate);
        const kept = tf.clone(errors);
        errors.dispose(); // tf.keep exempted it from every tidy
        return { lossSum: tf.mul<tfjs.Scalar>(loss, indices.length), errors: kept };
      }),
    dispose: () => velocity.forEach((v) => v.dispose()),
  };
}
