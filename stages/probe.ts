/**
 * probe(dataset, L, seed): runs the first N test images (the paper: all 10,000) through the trained network in eval
 * mode and records, per block and image, ||x_{l+1} - x_l||, that over ||x_l||, and cos(x_l, x_{l+1}).
 * Rows stream from the backend to the Parquet writer one batch at a time, so memory does not grow with N.
 */
import { dirname } from "node:path";
import { Effect, Schema } from "effect";
import { DATASETS } from "../science/data/datasets.ts";
import { loadResNet, MODEL_JSON } from "../science/model-io.ts";
import type { ResNet, TF } from "../science/resnet.ts";
import { probeModel, type ProbeImages, type ProbeOptions, type ProbeRow, type ProbeSummary } from "../science/probe.ts";
import { columns, defineStage, dependOn, StageError, StageIO, table, type Row } from "../pipeline/stage.ts";
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
  instances: (config: PaperConfig) =>
    config.datasets.flatMap((dataset) =>
      runsOf(config, dataset).map(({ L, seed }) => ({ dataset, L, seed, images: config[dataset].probeImages })),
    ),
  inputs: (p, config) => ({
    model: dependOn(train, trainParamsFor(config, p.dataset, p.L, p.seed)),
    data: dependOn(preprocess, { dataset: p.dataset }),
  }),
  label: (p) => `${p.dataset},L=${p.L},seed=${p.seed}`,
  outputs: {
    perturbations: table(
      "one row per (section, block, image); section 0..2 and block 0..L-1; scaled and cosine null when ||x_l|| = 0",
      columns("section:INT32 block:INT32 image:INT32 abs:DOUBLE scaled:DOUBLE? cosine:DOUBLE? inputNorm:DOUBLE outputNorm:DOUBLE"),
    ),
  },
  run: (p) =>
    Effect.gen(function* () {
      const io = yield* StageIO;
      const backend = yield* (yield* Backend).get;
      yield* io.recordRuntime("backend", backendRecord(backend));
      yield* io.log(describeBackend(backend));
      const [h, w, c] = DATASETS[p.dataset].imageShape;
      const test = yield* readImages("data", "test", h * w * c, p.images);
      const { mean, std } = yield* readChannelStats("data");
      const modelDir = dirname(yield* io.inputPath("model", MODEL_JSON));
      const model = yield* Effect.tryPromise({
        try: () => loadResNet(backend.tf as unknown as TF, modelDir),
        catch: (e) => new StageError({ message: `cannot load the model: ${(e as Error).message}` }),
      });
      const { rows, probing } = streamProbe(backend.tf as unknown as TF, model, test, {
        batchSize: PROBE_BATCH,
        mean,
        std,
        onProgress: (done, total) => Effect.runFork(io.progress({ fraction: done / total, message: `${done}/${total} images` })),
      });
      const [summary] = yield* Effect.all(
        [
          Effect.tryPromise({ try: () => probing, catch: (e) => new StageError({ message: `probe failed: ${(e as Error).message}` }) }),
          io.writeTable("perturbations", rows),
        ],
        { concurrency: 2 },
      ).pipe(Effect.ensuring(Effect.sync(() => model.dispose())));
      yield* io.recordRuntime("probe", summary);
    }),
});

/**
 * Probes `data` and hands its rows, as the stage writes them, to whoever iterates `rows` (the table writer), one batch
 * at a time through {@link rowChannel}; `probing` settles with the summary once every batch is handed over.
 */
export const streamProbe = (
  tf: TF,
  model: ResNet,
  data: ProbeImages,
  options: Omit<ProbeOptions, "onRows">,
): { readonly rows: AsyncIterable<Row>; readonly probing: Promise<ProbeSummary> } => {
  const channel = rowChannel();
  const probing = probeModel(tf, model, data, { ...options, onRows: (batch) => channel.push(batch) }).then(
    (summary) => {
      channel.close();
      return summary;
    },
    (error: unknown) => {
      channel.fail(error);
      throw error;
    },
  );
  return { rows: channel.iterate(), probing };
};

/** One probe row as the stage writes it: section and block 0-based. */
export const stageRow = (r: ProbeRow): Row => ({
  section: r.section - 1,
  block: r.block - 1,
  image: r.image,
  abs: r.abs,
  scaled: r.scaled,
  cosine: r.cosine,
  inputNorm: r.inputNorm,
  outputNorm: r.outputNorm,
});

/**
 * A one-batch hand-off from the probe (producer) to the Parquet writer (consumer): `push` resolves once the writer
 * has taken the batch, so at most two batches of rows are in memory.
 */
export const rowChannel = () => {
  type Item = { rows: ReadonlyArray<ProbeRow>; taken: () => void } | { end: true } | { error: unknown };
  const items: Item[] = [];
  let wake: (() => void) | undefined;
  const put = (item: Item) => {
    items.push(item);
    wake?.();
    wake = undefined;
  };
  return {
    push: (rows: ReadonlyArray<ProbeRow>) => new Promise<void>((taken) => put({ rows, taken })),
    close: () => put({ end: true }),
    fail: (error: unknown) => put({ error }),
    async *iterate(): AsyncGenerator<Row> {
      for (;;) {
        if (items.length === 0) await new Promise<void>((r) => (wake = r));
        const item = items.shift()!;
        if ("end" in item) return;
        if ("error" in item) throw item.error;
        item.taken(); // let the probe compute the next batch while this one is written
        for (const r of item.rows) yield stageRow(r);
      }
    },
  };
};
