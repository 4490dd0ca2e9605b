/**
 * train(dataset, L, seed): trains the paper's pre-activation ResNet with L blocks per section. Checkpoints every
 * epoch into the node's scratch directory, so a killed run resumes from its last epoch and ends bit-identical.
 */
import { dirname } from "node:path";
import { Effect, Schema, Stream } from "effect";
import { DATASETS } from "../science/data/datasets.ts";
import { saveResNet, MODEL_JSON, WEIGHTS_BIN } from "../science/model-io.ts";
import { measuredSecondsPerImage } from "../science/throughput.ts";
import {
  createTrainingModel,
  trainingEvents,
  type EpochMetrics,
  type TrainEvent,
  type TrainOptions,
} from "../science/training.ts";
import { attemptPromise, defineStage, dependOn, errorMessage, file, StageError } from "../pipeline/stage.ts";
import { Double, Int32, table, volatileTable } from "../pipeline/table.ts";
import { runsOf, trainImagesOf, TrainParams, trainParamsFor, type PaperConfig } from "./config.ts";
import { readChannelStats, readImages } from "./images.ts";
import { preprocess } from "./preprocess.ts";
import { Backend, backendRecord, describeBackend } from "./services.ts";

/** One epoch's training metrics (the deterministic part of EpochMetrics). */
export const EpochRowSchema = Schema.Struct({
  epoch: Int32,
  trainLoss: Double,
  trainError: Double,
  testError: Double,
  learningRate: Double,
});
/** One epoch's wall time and throughput. */
export const TimingRowSchema = Schema.Struct({ epoch: Int32, seconds: Double, imagesPerSecond: Double });

/** The input name under which a fan-in stage (aggregate, report) binds the train node of one (L, seed). */
export const trainInputName = (L: number, seed: number) => `train[L=${L},seed=${seed}]`;

const NO_EPOCHS: ReadonlyArray<EpochMetrics> = [];

export const train = defineStage({
  name: "train",
  version: "2", // 2: native training runs TensorFlow's fused BatchNorm/ReLU kernels (weights differ at float32 rounding)
  description: "train the pre-activation ResNet with L blocks per section",
  params: TrainParams,
  resources: "gpu",
  // A GPU job: a few CPUs feed it; the time limit of many clusters' GPU partitions (a longer run resumes on retry).
  jobResources: { cpus: 2, mem: "16G", time: "24:00:00" },
  instances: (config: PaperConfig) =>
    config.datasets.flatMap((dataset) =>
      runsOf(config, dataset).map(({ L, seed }) => trainParamsFor(config, dataset, L, seed)),
    ),
  inputs: (p) => ({ data: dependOn(preprocess, { dataset: p.dataset }) }),
  label: (p) => `${p.dataset},L=${p.L},seed=${p.seed}`,
  preview: (p) => {
    const images = trainImagesOf(p);
    const perImage = measuredSecondsPerImage(p.dataset, p.L);
    return {
      work: `${p.epochs} epoch${p.epochs === 1 ? "" : "s"} x ${images} images, batch ${p.batchSize}`,
      ...(perImage === undefined ? {} : { seconds: p.epochs * images * perImage }),
    };
  },
  summarize: (node) =>
    Effect.map(node.readTable("epochs"), (rows) => {
      const last = rows.at(-1);
      return last === undefined
        ? "no epoch recorded"
        : `test error ${(100 * last.testError).toFixed(2)}% after ${last.epoch} epoch${last.epoch === 1 ? "" : "s"}`;
    }),
  outputs: {
    [MODEL_JSON]: file("tfjs model topology and weights manifest"),
    [WEIGHTS_BIN]: file("tfjs weights"),
    epochs: table("per-epoch training metrics", EpochRowSchema),
    timings: volatileTable("per-epoch wall time and throughput", TimingRowSchema),
  },
  run: (p, io) =>
    Effect.gen(function* () {
      const backend = yield* (yield* Backend).get;
      yield* io.recordRuntime("backend", backendRecord(backend));
      yield* io.log(describeBackend(backend));
      const spec = DATASETS[p.dataset];
      const [h, w, c] = spec.imageShape;
      yield* io.progress({ message: "loading data" });
      const trainSet = yield* readImages(io.input("data"), "train", h * w * c, p.trainSubset);
      const testSet = yield* readImages(io.input("data"), "test", h * w * c);
      const { mean, std } = yield* readChannelStats(io.input("data"));
      const options: TrainOptions = {
        train: trainSet,
        test: testSet,
        shape: [h, w, c],
        mean,
        std,
        blocksPerSection: p.L,
        seed: p.seed,
        epochs: p.epochs,
        batchSize: p.batchSize,
        learningRate: p.learningRate,
        momentum: p.momentum,
        weightDecay: p.weightDecay,
        schedule: p.schedule,
        augment: p.augment,
        checkpointDir: yield* io.scratchDir,
      };
      const trainingFailed = (e: unknown) => new StageError({ message: `training failed: ${errorMessage(e)}` });
      const model = yield* Effect.acquireRelease(
        Effect.try({ try: () => createTrainingModel(backend.tf, options), catch: trainingFailed }),
        (m) => Effect.sync(() => m.dispose()),
      );
      // Training advances as this stream pulls its events; interrupting it (Ctrl-C) stops training at the next step.
      const metrics = yield* Stream.fromAsyncIterable(trainingEvents(model, options), trainingFailed).pipe(
        Stream.runFoldEffect(NO_EPOCHS, (done, event) => {
          switch (event.kind) {
            case "start": {
              const resumedFrom = event.resumed.at(-1);
              return io
                .recordRuntime("resumedEpochs", event.resumed.length)
                .pipe(
                  Effect.zipRight(resumedFrom === undefined ? Effect.void : io.log(resumedLine(resumedFrom, p.epochs))),
                  Effect.as(event.resumed),
                );
            }
            case "step":
              return Effect.as(io.progress(stepProgress(event, done.at(-1), p.epochs)), done);
            case "epoch":
              // A log line, not only progress: progress is throttled off a terminal, and every epoch's outcome counts.
              return io
                .progress({ fraction: event.metrics.epoch / p.epochs })
                .pipe(
                  Effect.zipRight(io.log(epochOutcome(event.metrics, p.epochs))),
                  Effect.as([...done, event.metrics]),
                );
          }
        }),
      );
      const modelPath = io.outputPath(MODEL_JSON);
      io.outputPath(WEIGHTS_BIN);
      yield* attemptPromise("cannot save the model", () => saveResNet(model, dirname(modelPath)));
      yield* io.writeTable(
        "epochs",
        metrics.map((m) => ({
          epoch: m.epoch,
          trainLoss: m.trainLoss,
          trainError: m.trainError,
          testError: m.testError,
          learningRate: m.learningRate,
        })),
      );
      yield* io.writeTable(
        "timings",
        metrics.map((m) => ({ epoch: m.epoch, seconds: m.seconds, imagesPerSecond: m.imagesPerSecond })),
      );
    }).pipe(Effect.scoped),
});

type Progress = { readonly fraction: number; readonly message: string };

/** Where training stands after a step, with the throughput of the last completed epoch if there is one. */
function stepProgress(
  { epoch, step, stepsPerEpoch }: Extract<TrainEvent, { kind: "step" }>,
  lastEpoch: EpochMetrics | undefined,
  epochs: number,
): Progress {
  const rate = lastEpoch === undefined ? "" : `, last epoch ${lastEpoch.imagesPerSecond.toFixed(0)} img/s`;
  return {
    fraction: ((epoch - 1) * stepsPerEpoch + step) / (epochs * stepsPerEpoch),
    message: `epoch ${epoch}/${epochs} step ${step}/${stepsPerEpoch}${rate}`,
  };
}

/** The outcome of a completed epoch, e.g. `epoch 3/10: test error 1.25%, 812 img/s`. */
function epochOutcome(m: EpochMetrics, epochs: number): string {
  const testError = `${(100 * m.testError).toFixed(2)}%`;
  return `epoch ${m.epoch}/${epochs}: test error ${testError}, ${m.imagesPerSecond.toFixed(0)} img/s`;
}

/** Which checkpoint training continues from, e.g. `resumed from epoch 2 (test error 3.10%), 1 epoch left`. */
function resumedLine(last: EpochMetrics, epochs: number): string {
  const left = epochs - last.epoch;
  const testError = `${(100 * last.testError).toFixed(2)}%`;
  return `resumed from epoch ${last.epoch} (test error ${testError}), ${left} epoch${left === 1 ? "" : "s"} left`;
}
