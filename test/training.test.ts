import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { serializeResNet } from "../science/model-io.ts";
import { type ResNet, type TF, createResNet, toModelInput } from "../science/resnet.ts";
import { Rng } from "../science/rng.ts";
import {
  type EpochMetrics,
  type ImageSet,
  type TrainEvent,
  type TrainOptions,
  augmentBatch,
  createTrainingModel,
  epochPlan,
  learningRateAt,
  trainModel,
  trainingEvents,
} from "../science/training.ts";
import { BACKENDS } from "./fixtures/backends.ts";

// Every suite runs on the pure-JS cpu backend and, when its binding is built, on native TensorFlow.

/**
 * A learnable synthetic task on tiny 4x4 grey images (the pure-JS backend is slow): the class
 * (0..2) is the row band that is bright, plus noise.
 */
function syntheticSet(count: number, seed: number): ImageSet {
  const rng = Rng.fromSeed(seed);
  const images = new Uint8Array(count * 16);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const label = rng.nextInt(3);
    labels[i] = label;
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 4; x++) {
        const bright = Math.min(y, 2) === label;
        images[i * 16 + y * 4 + x] = (bright ? 150 : 20) + rng.nextInt(80);
      }
    }
  }
  return { images, labels, count };
}

const TRAIN = syntheticSet(48, 1);
const TEST = syntheticSet(24, 2);
const BASE: TrainOptions = {
  train: TRAIN,
  test: TEST,
  shape: [4, 4, 1],
  mean: [0.35],
  std: [0.25],
  blocksPerSection: 1,
  classes: 3,
  seed: 17,
  epochs: 2,
  batchSize: 16,
  schedule: "cosine",
  augment: true,
  weightDecay: 5e-4,
};

/** Iterates a run's events until `stop` says so (or to the end), as a consumer that stops the run would. */
async function eventsUntil(
  model: ResNet,
  options: TrainOptions,
  stop: (event: TrainEvent) => boolean,
): Promise<TrainEvent[]> {
  const events: TrainEvent[] = [];
  for await (const event of trainingEvents(model, options)) {
    events.push(event);
    if (stop(event)) break;
  }
  return events;
}

const bytesOf = async (model: ResNet): Promise<Buffer> => Buffer.from((await serializeResNet(model)).weightsBin);

/** Mean cross-entropy over `set` in one training-mode batch (batch statistics, so no BN warm-up is needed). */
function batchLoss(tf: TF, model: ResNet, set: ImageSet): number {
  return tf.tidy(() => {
    const x = toModelInput(tf, tf.tensor4d(set.images, [set.count, 4, 4, 1], "int32"), BASE.mean, BASE.std);
    const labels = tf.oneHot(tf.tensor1d(set.labels, "int32"), 3);
    return tf.losses.softmaxCrossEntropy(labels, model.forward(x, { training: true })).dataSync()[0]!;
  });
}

describe("schedules and epoch plans", () => {
  it("cosine starts at lr0 and halves at mid-training; step divides by 10 at 50% and 75%", () => {
    expect(learningRateAt("cosine", 0.1, 0, 10)).toBeCloseTo(0.1, 12);
    expect(learningRateAt("cosine", 0.1, 5, 10)).toBeCloseTo(0.05, 12);
    expect(learningRateAt("cosine", 0.1, 9, 10)).toBeCloseTo(0.05 * (1 + Math.cos((Math.PI * 9) / 10)), 12);
    const expected = [0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001];
    expected.forEach((rate, epoch) => expect(learningRateAt("step", 0.1, epoch, 8)).toBeCloseTo(rate, 15));
  });

  it("derives the shuffle and the augmentation from (seed, epoch) only", () => {
    const a = epochPlan(5, 3, 100, true);
    expect(epochPlan(5, 3, 100, true)).toEqual(a);
    expect(epochPlan(5, 4, 100, true).order).not.toEqual(a.order);
    expect([...a.order].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(Math.min(...a.cropY, ...a.cropX)).toBe(0);
    expect(Math.max(...a.cropY, ...a.cropX)).toBe(8);
    expect(new Set(a.flip)).toEqual(new Set([0, 1]));
    expect(epochPlan(5, 3, 100, false).cropY.length).toBe(0);
  });
});

for (const backend of BACKENDS) {
  const tf = backend.tf;
  const title = tf === undefined ? `${backend.name} backend (skipped: ${backend.reason})` : `${backend.name} backend`;
  describe.skipIf(tf === undefined)(title, () => {
    if (tf === undefined) return;
    let dir = "";
    beforeAll(async () => {
      await tf.setBackend(backend.name);
      dir = await mkdtemp(path.join(tmpdir(), "training-test-"));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("augments exactly: 4-pixel zero padding, crop at the drawn offset, horizontal flip", () => {
      const [h, w, c] = [3, 5, 2];
      const pixel = (b: number, y: number, x: number, ch: number): number => 1 + ((b * 97 + y * 31 + x * 7 + ch) % 250);
      const values = new Int32Array(2 * h * w * c);
      for (let b = 0; b < 2; b++)
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++)
            for (let ch = 0; ch < c; ch++) {
              values[((b * h + y) * w + x) * c + ch] = pixel(b, y, x, ch);
            }
      // Positions 1 and 2 of the plan are used: image 0 crops at (0, 8) unflipped, image 1 at (6, 2) flipped.
      const plan = {
        order: new Int32Array(3),
        cropY: Int32Array.of(9, 0, 6),
        cropX: Int32Array.of(9, 8, 2),
        flip: Int32Array.of(1, 0, 1),
      };
      const out = tf.tidy(() => augmentBatch(tf, tf.tensor4d(values, [2, h, w, c], "int32"), plan, 1).dataSync());
      // Reference: padded(y, x) = pixel(y - 4, x - 4) inside the image, else 0.
      const padded = (b: number, y: number, x: number, ch: number): number =>
        y >= 4 && y < 4 + h && x >= 4 && x < 4 + w ? pixel(b, y - 4, x - 4, ch) : 0;
      for (let b = 0; b < 2; b++)
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++)
            for (let ch = 0; ch < c; ch++) {
              const y0 = plan.cropY[b + 1]!;
              const x0 = plan.cropX[b + 1]!;
              const sourceX = plan.flip[b + 1] === 1 ? x0 + w - 1 - x : x0 + x;
              expect(out[((b * h + y) * w + x) * c + ch]).toBe(padded(b, y0 + y, sourceX, ch));
            }
    });

    it("one epoch lowers the loss and reports sane metrics", async () => {
      const initial = createResNet(tf, { inputShape: [4, 4, 1], blocksPerSection: 1, classes: 3, seed: BASE.seed });
      const lossBefore = batchLoss(tf, initial, TRAIN);
      initial.dispose();
      const { model, metrics, resumedEpochs } = await trainModel(tf, {
        ...BASE,
        epochs: 1,
        augment: false,
        batchSize: 8,
      });
      try {
        const lossAfter = batchLoss(tf, model, TRAIN);
        expect(lossAfter).toBeLessThan(0.8 * lossBefore);
        expect(resumedEpochs).toBe(0);
        expect(metrics).toHaveLength(1);
        const m = metrics[0]!;
        expect(m.epoch).toBe(1);
        expect(m.learningRate).toBe(0.1);
        expect(m.trainLoss).toBeGreaterThan(0);
        for (const [error, count] of [
          [m.trainError, TRAIN.count],
          [m.testError, TEST.count],
        ] as const) {
          expect(error).toBeGreaterThanOrEqual(0);
          expect(error).toBeLessThanOrEqual(1);
          expect(error * count).toBeCloseTo(Math.round(error * count), 9); // a whole number of mistakes / N
        }
        expect(m.imagesPerSecond).toBeGreaterThan(0);
        expect(m.seconds).toBeGreaterThan(0);
      } finally {
        model.dispose();
      }
    });

    it("a run stopped in the middle of epoch 2 resumes from the epoch-1 checkpoint, bit-identical", async () => {
      const straightDir = path.join(dir, "straight");
      const resumedDir = path.join(dir, "resumed");
      const straight = await trainModel(tf, { ...BASE, checkpointDir: straightDir });
      const straightBytes = await bytesOf(straight.model);
      straight.model.dispose();

      const options = { ...BASE, checkpointDir: resumedDir };
      const before = tf.memory().numTensors;
      const stopped = createTrainingModel(tf, options);
      const modelTensors = tf.memory().numTensors - before;
      const events = await eventsUntil(stopped, options, (e) => e.kind === "step" && e.epoch === 2 && e.step === 2);
      // Stopped by its consumer at that step: only the model's own tensors are left, the checkpoint holds epoch 1.
      const seen = events.map((e) => (e.kind === "step" ? `${e.epoch}.${e.step}` : e.kind));
      expect(seen).toEqual(["start", "1.1", "1.2", "1.3", "epoch", "2.1", "2.2"]);
      expect(tf.memory().numTensors).toBe(before + modelTensors);
      stopped.dispose();
      const checkpoint = JSON.parse(await readFile(path.join(resumedDir, "checkpoint.json"), "utf8"));
      expect(checkpoint.epochsCompleted).toBe(1);
      expect((await readdir(resumedDir)).sort()).toEqual(["checkpoint.json", "epoch-0001.bin"]);

      const resumed = await trainModel(tf, options);
      try {
        expect(resumed.resumedEpochs).toBe(1);
        expect((await bytesOf(resumed.model)).equals(straightBytes)).toBe(true);
        const comparable = (m: EpochMetrics) => [m.epoch, m.trainLoss, m.trainError, m.testError, m.learningRate];
        expect(resumed.metrics.map(comparable)).toEqual(straight.metrics.map(comparable));
        // The final checkpoint also holds the end state, so "resuming" a finished run trains nothing.
        const again = await trainModel(tf, options);
        expect(again.resumedEpochs).toBe(2);
        expect((await bytesOf(again.model)).equals(straightBytes)).toBe(true);
        again.model.dispose();
      } finally {
        resumed.model.dispose();
      }
      // Different settings must not silently continue someone else's run.
      await expect(trainModel(tf, { ...options, seed: 18 })).rejects.toThrow(/other settings/);
    });

    it("gives the event loop a turn after every step, so timers and signal handlers run during an epoch", async () => {
      const model = createTrainingModel(tf, BASE);
      let stepsBeforeMacrotask: number | undefined;
      let steps = 0;
      setImmediate(() => (stepsBeforeMacrotask = steps));
      for await (const event of trainingEvents(model, { ...BASE, epochs: 1 })) if (event.kind === "step") steps++;
      model.dispose();
      expect(steps).toBe(3);
      expect(stepsBeforeMacrotask).toBe(0); // it ran before the first step's event, not after the epoch
    });

    it("refuses a model made for other options", async () => {
      const model = createTrainingModel(tf, { ...BASE, blocksPerSection: 2 });
      await expect(eventsUntil(model, BASE, () => false)).rejects.toThrow(/not made for these options/);
      model.dispose();
    });

    it("keeps tensor memory flat across steps and epochs and frees everything", async () => {
      const before = tf.memory().numTensors;
      const options: TrainOptions = { ...BASE, epochs: 3, schedule: "step", checkpointDir: path.join(dir, "memory") };
      const model = createTrainingModel(tf, options);
      const perStep: number[] = [];
      const perEpoch: number[] = [];
      for await (const event of trainingEvents(model, options)) {
        if (event.kind === "step") perStep.push(tf.memory().numTensors);
        if (event.kind === "epoch") perEpoch.push(tf.memory().numTensors);
      }
      expect(perStep).toHaveLength(3 * (TRAIN.count / BASE.batchSize));
      expect(new Set(perStep).size).toBe(1); // no tensor leaks per step
      expect(perEpoch).toHaveLength(3);
      expect(new Set(perEpoch).size).toBe(1);
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });

    it("never reads from the backend synchronously, and per epoch only the loss, error and test-error sums", async () => {
      const dataSync = vi.spyOn(tf.Tensor.prototype, "dataSync");
      const arraySync = vi.spyOn(tf.Tensor.prototype, "arraySync");
      const data = vi.spyOn(tf.Tensor.prototype, "data");
      try {
        const options = { ...BASE, batchSize: 8 };
        const model = createTrainingModel(tf, options);
        const events = await eventsUntil(model, options, () => false);
        model.dispose();
        expect(events.filter((e) => e.kind === "step")).toHaveLength(2 * (TRAIN.count / 8));
        expect(dataSync).not.toHaveBeenCalled();
        expect(arraySync).not.toHaveBeenCalled();
        expect(data).toHaveBeenCalledTimes(2 * 3); // per epoch: train loss sum, train error sum, test error count
      } finally {
        vi.restoreAllMocks();
      }
    });
  });
}
