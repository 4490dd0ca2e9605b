/**
 * Training loop for the pre-activation ResNet (science/resnet.ts), with a checkpoint after every
 * epoch and exact resumption.
 *
 * Shape: {@link trainingEvents} is an async generator of progress events that trains while it is iterated, so the
 * consumer sets the pace and stops the run by stopping the iteration (break, or return() as an Effect Stream does
 * when interrupted): training ends at the next step, keeping the checkpoint of the last completed epoch. After
 * every step (and every test-evaluation batch) it yields to the event loop, so timers, progress redraws and signal
 * handlers (Ctrl-C) run during an epoch. {@link trainModel} runs it to the end for callers that want no events.
 *
 * Optimiser: SGD with momentum written out by hand (the PyTorch / tf.train.momentum rule without
 * dampening or Nesterov):  g = dLoss/dw + weightDecay * w  (the decay term only for conv and dense
 * kernels, not for BN gamma/beta or the dense bias);  v = momentum * v + g;  w = w - lr * v.
 * Loss: mean softmax cross-entropy over the batch.
 * Learning rate: constant within an epoch. "cosine": lr0 * (1 + cos(pi * e / E)) / 2 for epoch e =
 * 0..E-1; "step": lr0 divided by 10 from epoch floor(E/2) on and again from floor(3E/4) on (the
 * 50% / 75% milestones of He et al.'s CIFAR schedule).
 * Data: uint8 HWC images live on the backend as one int32 tensor; each batch is a tf.gather of
 * shuffled indices, cast and normalised on the backend. The last batch of an epoch may be smaller.
 * Augmentation (CIFAR): zero-pad 4 pixels on each side (raw pixel value 0, before normalisation, as
 * torchvision's RandomCrop(32, padding=4)), take a random HxW crop, flip horizontally with
 * probability 1/2; done with two batched gathers, so it is exact (no interpolation).
 * Randomness: the shuffle and the augmentation of epoch e come from Rng.fromSeed(seed, e, stream),
 * so a run resumed from a checkpoint reproduces the uninterrupted run bit for bit on a deterministic
 * backend. Train loss/error are those of the training-mode forward passes during the epoch (with
 * augmentation); test error is measured in eval mode after the epoch.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type * as tfjs from "@tensorflow/tfjs";
import { writeFileAtomic } from "../cache/fsutil.ts";
import { assignVariables, decodeNamedTensors, encodeNamedTensors, type WeightSpecs } from "./model-io.ts";
import { ARCHITECTURE, createResNet, type ResNet, type TF, toModelInput } from "./resnet.ts";
import { Rng } from "./rng.ts";

/** Images as uint8 N*H*W*C (HWC interleaved) and one uint8 label per image. */
export interface ImageSet {
  readonly images: Uint8Array;
  readonly labels: Uint8Array;
  readonly count: number;
}

export type Schedule = "cosine" | "step";

export interface TrainOptions {
  readonly train: ImageSet;
  readonly test: ImageSet;
  /** [height, width, channels] */
  readonly shape: readonly [number, number, number];
  /** Per-channel mean and std on the 0..1 pixel scale. */
  readonly mean: ReadonlyArray<number>;
  readonly std: ReadonlyArray<number>;
  /** L, blocks per section. */
  readonly blocksPerSection: number;
  readonly classes?: number;
  readonly seed: number;
  readonly epochs: number;
  readonly batchSize: number;
  /** Test-set evaluation batch size (default: batchSize). */
  readonly evalBatchSize?: number;
  /** Default 0.1. */
  readonly learningRate?: number;
  /** Default 0.9. */
  readonly momentum?: number;
  /** L2 coefficient added to kernel gradients. Default 5e-4. */
  readonly weightDecay?: number;
  readonly schedule: Schedule;
  /** Random crop after 4-pixel zero padding + random horizontal flip (CIFAR); false for MNIST. */
  readonly augment: boolean;
  /** Where to checkpoint after each epoch and resume from; no checkpoints if absent. */
  readonly checkpointDir?: string;
}

export interface EpochMetrics {
  /** 1-based. */
  readonly epoch: number;
  readonly trainLoss: number;
  readonly trainError: number;
  readonly testError: number;
  readonly learningRate: number;
  /** Wall time of the epoch's training and test evaluation (the checkpoint write is not included). */
  readonly seconds: number;
  /** Training images per second over the training phase only. */
  readonly imagesPerSecond: number;
}

/** What a run reports while it trains, in order: one "start", then per epoch its "step"s and the "epoch". */
export type TrainEvent =
  /** The epochs restored from the checkpoint (none for a fresh run). */
  | { readonly kind: "start"; readonly resumed: ReadonlyArray<EpochMetrics> }
  /** After every optimiser step; nothing is read back from the backend for it. */
  | {
      readonly kind: "step";
      /** 1-based. */
      readonly epoch: number;
      /** 1-based step within the epoch. */
      readonly step: number;
      readonly stepsPerEpoch: number;
    }
  /** After an epoch's test evaluation and, with a checkpointDir, once its checkpoint is written. */
  | { readonly kind: "epoch"; readonly metrics: EpochMetrics };

export interface TrainResult {
  /** The trained model; the caller owns it (dispose()). */
  readonly model: ResNet;
  readonly metrics: ReadonlyArray<EpochMetrics>;
  /** Epochs taken from a checkpoint instead of being trained in this call (0 for a fresh run). */
  readonly resumedEpochs: number;
}

const STREAM_SHUFFLE = 1;
const STREAM_AUGMENT = 2;
const AUGMENT_PADDING = 4;

/**
 * Learning rate at `epoch` (0-based, fractional within an epoch) out of `epochs`: cosine annealing evaluated per step,
 * or the step schedule (divided by 10 from epoch floor(E/2) and again from floor(3E/4)), constant within an epoch.
 */
export function learningRateAt(schedule: Schedule, baseRate: number, epoch: number, epochs: number): number {
  if (schedule === "cosine") return (baseRate * (1 + Math.cos((Math.PI * epoch) / epochs))) / 2;
  const drops = (epoch >= Math.floor(epochs / 2) ? 1 : 0) + (epoch >= Math.floor((3 * epochs) / 4) ? 1 : 0);
  return baseRate * 0.1 ** drops;
}

/** The per-epoch sample order and augmentation draws, derived from (seed, epoch) only. */
export interface EpochPlan {
  readonly order: Int32Array;
  /** Crop offsets in 0..2*padding and flip flags (0/1), per position in `order`; empty without augmentation. */
  readonly cropY: Int32Array;
  readonly cropX: Int32Array;
  readonly flip: Int32Array;
}

export function epochPlan(seed: number, epoch: number, count: number, augment: boolean): EpochPlan {
  const order = Rng.fromSeed(seed, epoch, STREAM_SHUFFLE).permutation(count);
  const n = augment ? count : 0;
  const cropY = new Int32Array(n);
  const cropX = new Int32Array(n);
  const flip = new Int32Array(n);
  const rng = Rng.fromSeed(seed, epoch, STREAM_AUGMENT);
  for (let i = 0; i < n; i++) {
    cropY[i] = rng.nextInt(2 * AUGMENT_PADDING + 1);
    cropX[i] = rng.nextInt(2 * AUGMENT_PADDING + 1);
    flip[i] = rng.nextInt(2);
  }
  return { order, cropY, cropX, flip };
}

/**
 * Zero-pads raw pixels [B,H,W,C] by `AUGMENT_PADDING` and crops HxW at the given offsets, flipping
 * horizontally where flip is 1; positions [start, start+B) of the plan. Exact integer indexing.
 */
export function augmentBatch(tf: TF, pixels: tfjs.Tensor4D, plan: EpochPlan, start: number): tfjs.Tensor4D {
  const [b, h, w] = pixels.shape;
  const rows = new Int32Array(b * h);
  const cols = new Int32Array(b * w);
  for (let k = 0; k < b; k++) {
    const y0 = plan.cropY[start + k]!;
    const x0 = plan.cropX[start + k]!;
    const flipped = plan.flip[start + k] === 1;
    for (let i = 0; i < h; i++) rows[k * h + i] = y0 + i;
    for (let j = 0; j < w; j++) cols[k * w + j] = flipped ? x0 + w - 1 - j : x0 + j;
  }
  return tf.tidy(() => {
    const p = AUGMENT_PADDING;
    const padded = tf.pad(pixels, [
      [0, 0],
      [p, p],
      [p, p],
      [0, 0],
    ]);
    const cropRows = tf.gather(padded, tf.tensor2d(rows, [b, h], "int32"), 1, 1);
    return tf.gather<tfjs.Tensor4D>(cropRows, tf.tensor2d(cols, [b, w], "int32"), 2, 1);
  });
}

function validateImageSet(
  name: string,
  set: ImageSet,
  shape: readonly [number, number, number],
  classes: number,
): void {
  const pixels = shape[0] * shape[1] * shape[2];
  if (!Number.isInteger(set.count) || set.count < 1) throw new RangeError(`${name}: count must be >= 1`);
  if (set.images.length !== set.count * pixels) {
    throw new RangeError(`${name}: expected ${set.count * pixels} pixel bytes, got ${set.images.length}`);
  }
  if (set.labels.length !== set.count) throw new RangeError(`${name}: expected ${set.count} labels`);
  for (const label of set.labels) {
    if (label >= classes) throw new RangeError(`${name}: label ${label} out of range for ${classes} classes`);
  }
}

/** Lets timers, I/O and signal handlers run (a macrotask turn) between synchronous backend work. */
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Number of misclassified images of `set`, eval mode, in batches, yielding to the event loop after each; one read
 * from the backend.
 */
export async function countErrors(
  model: ResNet,
  set: ImageSet,
  mean: ReadonlyArray<number>,
  std: ReadonlyArray<number>,
  batchSize: number,
): Promise<number> {
  const tf = model.tf;
  const [h, w, c] = model.config.inputShape;
  const perImage = h * w * c;
  let errors: tfjs.Tensor = tf.scalar(0, "int32");
  try {
    for (let start = 0; start < set.count; start += batchSize) {
      const end = Math.min(set.count, start + batchSize);
      const next = tf.tidy(() => {
        const pixels = tf.tensor4d(
          set.images.subarray(start * perImage, end * perImage),
          [end - start, h, w, c],
          "int32",
        );
        const labels = tf.tensor1d(set.labels.subarray(start, end), "int32");
        const logits = model.forward(toModelInput(tf, pixels, mean, std), { training: false });
        return tf.add(errors, tf.sum(tf.cast(tf.notEqual(tf.argMax(logits, 1), labels), "int32")));
      });
      errors.dispose();
      errors = next;
      await yieldToEventLoop();
    }
    return (await errors.data())[0]!;
  } finally {
    errors.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints: <dir>/checkpoint.json (the commit point) naming <dir>/epoch-NNNN.bin.

const CHECKPOINT_JSON = "checkpoint.json";
const CHECKPOINT_VERSION = 1;

interface CheckpointJson {
  readonly version: number;
  /** The settings the run was started with; resuming requires equal settings. */
  readonly settings: Record<string, unknown>;
  readonly epochsCompleted: number;
  readonly metrics: ReadonlyArray<EpochMetrics>;
  readonly weightsFile: string;
  /** Model variables under their names, velocities under "velocity/<name>". */
  readonly weights: WeightSpecs;
}

/** The settings that determine the trajectory of a run, in a fixed key order. */
function runSettings(o: TrainOptions, classes: number): Record<string, unknown> {
  return {
    arch: ARCHITECTURE,
    shape: [...o.shape],
    blocksPerSection: o.blocksPerSection,
    classes,
    seed: o.seed,
    epochs: o.epochs,
    batchSize: o.batchSize,
    learningRate: o.learningRate ?? 0.1,
    momentum: o.momentum ?? 0.9,
    weightDecay: o.weightDecay ?? 5e-4,
    schedule: o.schedule,
    augment: o.augment,
    mean: [...o.mean],
    std: [...o.std],
    trainCount: o.train.count,
    testCount: o.test.count,
  };
}

const velocityName = (name: string): string => `velocity/${name}`;

async function writeCheckpoint(
  dir: string,
  model: ResNet,
  velocity: ReadonlyMap<string, tfjs.Variable>,
  settings: Record<string, unknown>,
  metrics: ReadonlyArray<EpochMetrics>,
): Promise<void> {
  const epochsCompleted = metrics.length;
  const tensors = [
    ...model.variables.map((v) => ({ name: v.name, tensor: v.variable })),
    ...[...velocity].map(([name, tensor]) => ({ name: velocityName(name), tensor: tensor })),
  ];
  const { specs, data } = await encodeNamedTensors(model.tf, tensors);
  const weightsFile = `epoch-${String(epochsCompleted).padStart(4, "0")}.bin`;
  const json: CheckpointJson = {
    version: CHECKPOINT_VERSION,
    settings,
    epochsCompleted,
    metrics,
    weightsFile,
    weights: specs,
  };
  await fs.mkdir(dir, { recursive: true });
  await writeFileAtomic(path.join(dir, weightsFile), data);
  await writeFileAtomic(path.join(dir, CHECKPOINT_JSON), JSON.stringify(json));
  for (const file of await fs.readdir(dir)) {
    if (/^epoch-\d+\.bin$/.test(file) && file !== weightsFile) await fs.rm(path.join(dir, file), { force: true });
  }
}

/** Restores model and velocities from `dir` if it holds a checkpoint; returns its metrics (empty if none). */
async function restoreCheckpoint(
  dir: string,
  model: ResNet,
  velocity: ReadonlyMap<string, tfjs.Variable>,
  settings: Record<string, unknown>,
): Promise<ReadonlyArray<EpochMetrics>> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, CHECKPOINT_JSON), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const json = JSON.parse(text) as CheckpointJson;
  if (json.version !== CHECKPOINT_VERSION) throw new Error(`checkpoint ${dir}: unsupported version ${json.version}`);
  if (JSON.stringify(json.settings) !== JSON.stringify(settings)) {
    throw new Error(
      `checkpoint ${dir} was written for other settings: ${JSON.stringify(json.settings)} vs ${JSON.stringify(settings)}`,
    );
  }
  if (json.metrics.length !== json.epochsCompleted) throw new Error(`checkpoint ${dir}: metrics/epoch mismatch`);
  const bytes = new Uint8Array(await fs.readFile(path.join(dir, json.weightsFile)));
  const decoded = decodeNamedTensors(model.tf, json.weights, bytes);
  try {
    for (const name of velocity.keys()) {
      const t = decoded.get(velocityName(name));
      if (t === undefined) throw new Error(`checkpoint ${dir}: missing velocity of ${name}`);
    }
    assignVariables(model, decoded);
    for (const [name, v] of velocity) v.assign(decoded.get(velocityName(name))!);
  } finally {
    for (const t of decoded.values()) t.dispose();
  }
  return json.metrics;
}

// ---------------------------------------------------------------------------------------------

/** The model a run with `options` starts from, He-initialised from its seed; the caller owns it (dispose()). */
export function createTrainingModel(tf: TF, options: TrainOptions): ResNet {
  const { shape: inputShape, blocksPerSection, classes = 10, seed } = options;
  return createResNet(tf, { inputShape, blocksPerSection, classes, seed });
}

/**
 * Trains `model`, made by {@link createTrainingModel} with the same options, in place (or first restores the run
 * checkpointed in `checkpointDir`), reporting {@link TrainEvent}s as it goes; see the module comment for pacing and
 * stopping. Tensor memory is flat across steps and epochs, and everything but the model is freed when the iteration
 * ends, however it ends.
 */
export async function* trainingEvents(model: ResNet, options: TrainOptions): AsyncGenerator<TrainEvent, void> {
  const tf = model.tf;
  const classes = options.classes ?? 10;
  const { shape, batchSize, epochs } = options;
  const baseRate = options.learningRate ?? 0.1;
  const momentum = options.momentum ?? 0.9;
  const weightDecay = options.weightDecay ?? 5e-4;
  const evalBatchSize = options.evalBatchSize ?? batchSize;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be >= 1`);
  if (!Number.isInteger(epochs) || epochs < 1) throw new RangeError(`epochs must be >= 1`);
  const { inputShape, blocksPerSection } = model.config;
  const sameShape = inputShape.every((d, i) => d === shape[i]);
  if (!sameShape || blocksPerSection !== options.blocksPerSection || model.config.classes !== classes) {
    throw new RangeError(`the model (L = ${blocksPerSection}, ${inputShape.join("x")}) was not made for these options`);
  }
  validateImageSet("train", options.train, shape, classes);
  validateImageSet("test", options.test, shape, classes);
  const settings = runSettings(options, classes);

  const trainable = model.variables.filter((v) => v.trainable);
  const velocity = new Map(trainable.map((v) => [v.name, tf.tidy(() => tf.variable(tf.zerosLike(v.variable), false))]));
  const [h, w, c] = shape;
  const count = options.train.count;
  const trainImages = tf.tensor4d(options.train.images, [count, h, w, c], "int32");
  const trainLabels = tf.tensor1d(options.train.labels, "int32");
  try {
    const { checkpointDir } = options;
    const resumed =
      checkpointDir === undefined ? [] : await restoreCheckpoint(checkpointDir, model, velocity, settings);
    yield { kind: "start", resumed };
    const metrics: EpochMetrics[] = [...resumed];
    const stepsPerEpoch = Math.ceil(count / batchSize);

    for (let epoch = resumed.length; epoch < epochs; epoch++) {
      const epochStart = performance.now();
      const rate = learningRateAt(options.schedule, baseRate, epoch, epochs);
      const plan = epochPlan(options.seed, epoch, count, options.augment);
      let lossSum: tfjs.Tensor = tf.scalar(0);
      let errorSum: tfjs.Tensor = tf.scalar(0, "int32");
      try {
        for (let step = 0; step < stepsPerEpoch; step++) {
          const start = step * batchSize;
          const end = Math.min(count, start + batchSize);
          // Cosine anneals every step (fractional epochs); the step schedule changes only at epoch boundaries.
          const stepRate = learningRateAt(options.schedule, baseRate, epoch + step / stepsPerEpoch, epochs);
          const [nextLoss, nextErrors] = tf.tidy((): [tfjs.Tensor, tfjs.Tensor] => {
            const indices = tf.tensor1d(plan.order.subarray(start, end), "int32");
            let pixels = tf.gather<tfjs.Tensor4D>(trainImages, indices);
            if (options.augment) pixels = augmentBatch(tf, pixels, plan, start);
            const x = toModelInput(tf, pixels, options.mean, options.std);
            const labels = tf.gather(trainLabels, indices);
            let batchErrors: tfjs.Tensor | undefined;
            const { value, grads } = tf.variableGrads(
              () => {
                const logits = model.forward(x, { training: true });
                batchErrors = tf.keep(tf.sum(tf.cast(tf.notEqual(tf.argMax(logits, 1), labels), "int32")));
                return tf.losses.softmaxCrossEntropy<tfjs.Tensor, tfjs.Scalar>(tf.oneHot(labels, classes), logits);
              },
              trainable.map((v) => v.variable),
            );
            for (const p of trainable) {
              const v = velocity.get(p.name)!;
              const g = p.decayed
                ? tf.add(grads[p.variable.name]!, tf.mul(p.variable, weightDecay))
                : grads[p.variable.name]!;
              v.assign(tf.add(tf.mul(v, momentum), g));
              p.variable.assign(tf.sub(p.variable, tf.mul(v, stepRate)));
            }
            const errorTotal = tf.add(errorSum, batchErrors!);
            batchErrors!.dispose(); // tf.keep exempted it from every tidy
            return [tf.add(lossSum, tf.mul(value, end - start)), errorTotal];
          });
          lossSum.dispose();
          errorSum.dispose();
          lossSum = nextLoss;
          errorSum = nextErrors;
          // The event loop's turn comes before the event, so a stop requested in it (Ctrl-C) ends at this yield.
          await yieldToEventLoop();
          yield { kind: "step", epoch: epoch + 1, step: step + 1, stepsPerEpoch };
        }
        const [loss, errors] = await Promise.all([lossSum.data(), errorSum.data()]);
        const trainSeconds = (performance.now() - epochStart) / 1000;
        const testErrors = await countErrors(model, options.test, options.mean, options.std, evalBatchSize);
        metrics.push({
          epoch: epoch + 1,
          trainLoss: loss[0]! / count,
          trainError: errors[0]! / count,
          testError: testErrors / options.test.count,
          learningRate: rate,
          seconds: (performance.now() - epochStart) / 1000,
          imagesPerSecond: count / trainSeconds,
        });
        if (options.checkpointDir !== undefined) {
          await writeCheckpoint(options.checkpointDir, model, velocity, settings, metrics);
        }
      } finally {
        lossSum.dispose();
        errorSum.dispose();
      }
      yield { kind: "epoch", metrics: metrics[metrics.length - 1]! };
    }
  } finally {
    trainImages.dispose();
    trainLabels.dispose();
    for (const v of velocity.values()) v.dispose();
  }
}

/** Trains a fresh model (or resumes the run in `checkpointDir`) to the end, without watching its events. */
export async function trainModel(tf: TF, options: TrainOptions): Promise<TrainResult> {
  const model = createTrainingModel(tf, options);
  try {
    const metrics: EpochMetrics[] = [];
    let resumedEpochs = 0;
    for await (const event of trainingEvents(model, options)) {
      if (event.kind === "start") resumedEpochs = metrics.push(...event.resumed);
      if (event.kind === "epoch") metrics.push(event.metrics);
    }
    return { model, metrics, resumedEpochs };
  } catch (error) {
    model.dispose();
    throw error;
  }
}
