/**
 * preprocess(dataset): decodes the IDX / CIFAR binary files into Parquet tables of uint8 HWC pixels, and checks
 * them against the published facts: split sizes, label histograms, and per-channel mean/std of the training split.
 */
import { Effect, Schema } from "effect";
import { DATASETS, type Split } from "../science/data/datasets.ts";
import { loadSplit } from "../science/data/load.ts";
import { describeProblems, verifyFiles } from "../science/data/verify.ts";
import { channelMeanStd, labelHistogram } from "../science/data/stats.ts";
import { attemptPromise, defineStage, dependOn, fail } from "../pipeline/stage.ts";
import { Bytes, Double, Int32, table, Utf8 } from "../pipeline/table.ts";
import { DatasetName, type PaperConfig } from "./config.ts";
import { download } from "./download.ts";
import { DataSource } from "./services.ts";

/** Published statistics are printed to 4 decimals. */
const PUBLISHED_TOLERANCE = 5e-5;

/** One image of a split: its index in the split, its label and its pixels (uint8, HWC interleaved). */
const ImageRowSchema = Schema.Struct({ index: Int32, label: Int32, pixels: Bytes });
type ImageRow = typeof ImageRowSchema.Type;

const imageTable = (split: string) =>
  table(`the ${split} split: one row per image, pixels uint8 HWC interleaved`, ImageRowSchema);

function* imageRows(pixels: Uint8Array, labels: Uint8Array, imageBytes: number): Generator<ImageRow> {
  for (let i = 0; i < labels.length; i++) {
    yield { index: i, label: labels[i]!, pixels: pixels.subarray(i * imageBytes, (i + 1) * imageBytes) };
  }
}

/** How many images of a split carry a label. */
const LabelCountSchema = Schema.Struct({ split: Utf8, label: Int32, count: Int32 });

export const preprocess = defineStage({
  name: "preprocess",
  version: "1",
  description: "decode the raw files into Parquet tables and check them against the published statistics",
  params: Schema.Struct({ dataset: DatasetName }),
  resources: "cpu",
  jobResources: { cpus: 1, mem: "8G", time: "1:00:00" },
  instances: (config: PaperConfig) => config.datasets.map((dataset) => ({ dataset })),
  inputs: (p) => ({ raw: dependOn(download, { dataset: p.dataset }) }),
  label: (p) => p.dataset,
  outputs: {
    train: imageTable("training"),
    test: imageTable("test"),
    stats: table(
      "per-channel mean and std of the training pixels (0..1 scale), ours and published",
      Schema.Struct({ channel: Int32, mean: Double, std: Double, publishedMean: Double, publishedStd: Double }),
    ),
    labels: table("label histogram per split", LabelCountSchema),
  },
  run: (p, io) =>
    Effect.gen(function* () {
      const { dataDir } = yield* DataSource;
      const spec = DATASETS[p.dataset];
      // The download artifact vouches for the files, but they live outside the cache: check they are still the same.
      const checks = yield* Effect.promise(() => verifyFiles(spec, dataDir));
      const problems = describeProblems(spec, checks);
      if (problems.length > 0) return yield* fail(problems.join("; "));
      const [h, w, c] = spec.imageShape;
      const histogramRows: Array<typeof LabelCountSchema.Type> = [];
      for (const split of ["train", "test"] as const satisfies ReadonlyArray<Split>) {
        yield* io.progress({ message: `decoding ${split}` });
        const data = yield* attemptPromise(`${spec.displayName} ${split}`, () => loadSplit(spec, dataDir, split));
        const histogram = labelHistogram(data.labels, spec.classCount);
        const expected = spec.labelHistogram[split];
        if (histogram.some((n, label) => n !== expected[label])) {
          return yield* fail(
            `${spec.displayName} ${split} label histogram ${histogram.join(" ")} differs from the published ${expected.join(" ")}`,
          );
        }
        histogram.forEach((count, label) => histogramRows.push({ split, label, count }));
        if (split === "train") {
          const stats = channelMeanStd(data.pixels, c);
          const off =
            stats.mean.some((m, i) => Math.abs(m - spec.publishedMean[i]!) > PUBLISHED_TOLERANCE) ||
            stats.std.some((s, i) => Math.abs(s - spec.publishedStd[i]!) > PUBLISHED_TOLERANCE);
          if (off) {
            return yield* fail(
              `${spec.displayName} training mean/std ${stats.mean.map((m) => m.toFixed(4)).join(",")}/${stats.std.map((s) => s.toFixed(4)).join(",")} differ from the published ${spec.publishedMean.join(",")}/${spec.publishedStd.join(",")}`,
            );
          }
          yield* io.writeTable(
            "stats",
            stats.mean.map((mean, channel) => ({
              channel,
              mean,
              std: stats.std[channel]!,
              publishedMean: spec.publishedMean[channel]!,
              publishedStd: spec.publishedStd[channel]!,
            })),
          );
        }
        yield* io.progress({ message: `writing ${split} (${data.count} rows)` });
        yield* io.writeTable(split, imageRows(data.pixels, data.labels, h * w * c));
      }
      yield* io.writeTable("labels", histogramRows);
    }),
});
