/**
 * probe(dataset, L, seed): runs the first N test images (the paper: all 10,000) through the trained network in eval
 * mode and records, per block and image, ||x_{l+1} - x_l||, that over ||x_l||, and cos(x_l, x_{l+1}).
 * Rows stream from the backend to the Parquet writer one batch at a time, so memory does not grow with N.
 */
import { dirname } from "node:path";
import { Chunk, Effect, Ref, Schema, Stream } from "effect";
import { DATASETS } from "../science/data/datasets.ts";
import { loadResNet, MODEL_JSON } from "../science/model-io.ts";
import { measuredSecondsPerImage } from "../science/throughput.ts";
import { addToSummary, EMPTY_PROBE_SUMMARY, probeBatches, ProbeRowSchema } from "../science/probe.ts";
import { attemptPromise, defineStage, dependOn, errorMessage, StageError } from "../pipeline/stage.ts";
import { table } from "../pipeline/table.ts";
import { DatasetName, runsOf, trainParamsFor, type PaperConfig } from "./config.ts";
import { readChannelStats, readImages } from "./images.ts";
import { preprocess } from "./preprocess.ts";
import { Backend, backendRecord, describeBackend } from "./services.ts";
import { train } from "./train.ts";

const PROBE_BATCH = 100;

export const probe = defineStage({
  name: "probe",
  version: "2",
  description: "per-block perturbation norms of the trained network on the test images",
  params: Schema.Struct({
    dataset: DatasetName,
    L: Schema.Int.pipe(Schema.between(1, 100)),
    seed: Schema.Int.pipe(Schema.nonNegative()),
    images: Schema.Int.pipe(Schema.between(1, 10_000)),
  }),
  resources: "gpu",
  jobResources: { cpus: 2, mem: "8G", time: "4:00:00" },
  instances: (config: PaperConfig) =>
    config.datasets.flatMap((dataset) =>
      runsOf(config, dataset).map(({ L, seed }) => ({ dataset, L, seed, images: config[dataset].probeImages })),
    ),
  inputs: (p, config) => ({
    model: dependOn(train, trainParamsFor(config, p.dataset, p.L, p.seed)),
    data: dependOn(preprocess, { dataset: p.dataset }),
  }),
  label: (p) => `${p.dataset},L=${p.L},seed=${p.seed}`,
  // A forward pass costs about a third of a training step; counting a whole one errs on the long side, as the
  // estimator of presets does.
  preview: (p) => {
    const perImage = measuredSecondsPerImage(p.dataset, p.L);
    return { work: `${p.images} test images`, ...(perImage === undefined ? {} : { seconds: p.images * perImage }) };
  },
  outputs: {
    perturbations: table(
      "one row per (section, block, image); section 0..2 and block 0..L-1; scaled and cosine null when ||x_l|| = 0",
      ProbeRowSchema,
    ),
  },
  run: (p, io) =>
    Effect.gen(function* () {
      const backend = yield* (yield* Backend).get;
      yield* io.recordRuntime("backend", backendRecord(backend));
      yield* io.log(describeBackend(backend));
      const [h, w, c] = DATASETS[p.dataset].imageShape;
      const test = yield* readImages(io.input("data"), "test", h * w * c, p.images);
      const { mean, std } = yield* readChannelStats(io.input("data"));
      const modelDir = dirname(yield* io.input("model").path(MODEL_JSON));
      const model = yield* attemptPromise("cannot load the model", () => loadResNet(backend.tf, modelDir));
      const summary = yield* Ref.make(EMPTY_PROBE_SUMMARY);
      // One batch of images at a time from the backend to the Parquet writer: memory does not grow with N.
      const rows = Stream.fromAsyncIterable(
        probeBatches(backend.tf, model, test, { batchSize: PROBE_BATCH, mean, std }),
        (e) => new StageError({ message: `probe failed: ${errorMessage(e)}` }),
      ).pipe(
        Stream.tap((batch) =>
          Effect.zipRight(
            Ref.update(summary, (s) => addToSummary(s, batch)),
            io.progress({
              fraction: batch.imagesDone / batch.imagesTotal,
              message: `${batch.imagesDone}/${batch.imagesTotal} images`,
            }),
          ),
        ),
        Stream.mapConcatChunk((batch) => Chunk.unsafeFromArray(batch.rows)),
      );
      yield* io.writeTable("perturbations", rows).pipe(Effect.ensuring(Effect.sync(() => model.dispose())));
      yield* io.recordRuntime("probe", yield* Ref.get(summary));
    }),
});
