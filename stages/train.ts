/**
 * train(dataset, L, seed): trains the paper's pre-activation ResNet with L blocks per section. Checkpoints every
 * epoch into the node's scratch directory, so a killed run resumes from its last epoch and ends bit-identical.
 */
import { dirname } from "node:path";
import { Effect, Schema } from "effect";
import { DATASETS } from "../science/data/datasets.ts";
import { saveResNet, MODEL_JSON, WEIGHTS_BIN } from "../science/resnet.ts";
import { trainModel, type EpochMetrics } from "../science/training.ts";
import { attemptPromise, defineStage, dependOn, errorMessage, file, StageError } from "../pipeline/stage.ts";
import { Double, Int32, table, volatileTable } from "../pipeline/table.ts";
import { DatasetName, runsOf, trainParamsFor, type PaperConfig } from "./config.ts";
import { readChannelStats, readImages } from "./images.ts";
import { preprocess } from "./preprocess.ts";
import { Backend, backendRecord, describeBackend } from "./services.ts";

const TrainParamsSchema = Schema.Struct({
  dataset: DatasetName,
  L: Schema.Int.pipe(Schema.between(1, 100)),
  seed: Schema.Int.pipe(Schema.nonNegative()),
  epochs: Schema.Int.pipe(Schema.positive()),
  trainSubset: Schema.Int.pipe(Schema.nonNegative()),
  batchSize: Schema.Int.pipe(Schema.positive()),
  augment: Schema.Boolean,
  learningRate: Schema.Number.pipe(Schema.positive()),
  momentum: Schema.Number,
  weightDecay: Schema.Number.pipe(Schema.nonNegative()),
  schedule: Schema.Literal("cosine", "step"),
});

/** One epoch's training metrics (the deterministic part of EpochMetrics). */
const EpochRowSchema = Schema.Struct({
  epoch: Int32,
  trainLoss: Double,
  trainError: Double,
  testError: Double,
  learningRate: Double,
});
/** One epoch's wall time and throughput. */
const TimingRowSchema = Schema.Struct({ epoch: Int32, seconds: Double, imagesPerSecond: Double });

export const train = defineStage({
  name: "train",
  version: "2", // 2: native training runs TensorFlow's fused BatchNorm/ReLU kernels (weights differ at float32 rounding)
  description: "train the pre-activation ResNet with L blocks per section",
  params: TrainParamsSchema,
  resources: "gpu",
  instances: (config: PaperConfig) =>
    config.datasets.flatMap((dataset) => runsOf(config, dataset).map(({ L, seed }) => trainParamsFor(config, dataset, L, seed))),
  inputs: (p) => ({ data: dependOn(preprocess, { dataset: p.dataset }) }),
  label: (p) => `${p.dataset},L=${p.L},seed=${p.seed}`,
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
      const checkpointDir = yield* io.scratchDir;
      const stepsPerEpoch = Math.ceil(trainSet.count / p.batchSize);
      let last: EpochMetrics | undefined;
      const progress = (fraction: number, message: string) => Effect.runFork(io.progress({ fraction, message }));
      const result = yield* Effect.tryPromise({
        try: (signal) =>
          trainModel(backend.tf, {
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
            checkpointDir,
            signal,
            onStep: ({ epoch, step }) => {
              if (step % 10 === 0 || step === stepsPerEpoch) {
                const done = (epoch - 1) * stepsPerEpoch + step;
                const rate = last ? `, last epoch ${last.imagesPerSecond.toFixed(0)} img/s` : "";
                progress(done / (p.epochs * stepsPerEpoch), `epoch ${epoch}/${p.epochs} step ${step}/${stepsPerEpoch}${rate}`);
              }
            },
            onEpoch: (m) => {
              last = m;
              progress(m.epoch / p.epochs, `epoch ${m.epoch}: test error ${(100 * m.testError).toFixed(2)}%, ${m.imagesPerSecond.toFixed(0)} img/s`);
            },
          }),
        catch: (e) => new StageError({ message: `training failed: ${errorMessage(e)}` }),
      });
      yield* Effect.gen(function* () {
        yield* io.recordRuntime("resumedEpochs", result.resumedEpochs);
        const modelPath = io.outputPath(MODEL_JSON);
        io.outputPath(WEIGHTS_BIN);
        yield* attemptPromise("cannot save the model", () => saveResNet(result.model, dirname(modelPath)));
        yield* io.writeTable(
          "epochs",
          result.metrics.map((m) => ({
            epoch: m.epoch,
            trainLoss: m.trainLoss,
            trainError: m.trainError,
            testError: m.testError,
            learningRate: m.learningRate,
          })),
        );
        yield* io.writeTable(
          "timings",
          result.metrics.map((m) => ({ epoch: m.epoch, seconds: m.seconds, imagesPerSecond: m.imagesPerSecond })),
        );
      }).pipe(Effect.ensuring(Effect.sync(() => result.model.dispose())));
    }),
});
