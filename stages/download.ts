/**
 * download(dataset): makes sure the standard distribution files are present and genuine (md5 against constants
 * in the code). Offline it only checks `--data-dir`; online it fetches what is missing from the canonical mirrors.
 * Its artifact is the list of verified files, so downstream keys change with the files' content.
 */
import { Effect, Schema } from "effect";
import { DATASETS } from "../science/data/datasets.ts";
import { downloadDataset } from "../science/data/download.ts";
import { describeProblems, verifyFiles, type FileCheck } from "../science/data/verify.ts";
import { defineStage, errorMessage, fail, StageError } from "../pipeline/stage.ts";
import { Int64, table, Utf8 } from "../pipeline/table.ts";
import { DatasetName, type PaperConfig } from "./config.ts";
import { DataSource } from "./services.ts";

export const download = defineStage({
  name: "download",
  version: "1",
  description: "verify (and, online, fetch) the standard distribution files",
  params: Schema.Struct({ dataset: DatasetName }),
  resources: "cpu",
  instances: (config: PaperConfig) => config.datasets.map((dataset) => ({ dataset })),
  inputs: () => ({}),
  label: (p) => p.dataset,
  outputs: {
    files: table("the verified distribution files", Schema.Struct({ file: Utf8, bytes: Int64, md5: Utf8 })),
  },
  run: (p, io) =>
    Effect.gen(function* () {
      const source = yield* DataSource;
      const spec = DATASETS[p.dataset];
      yield* io.progress({ message: `checking ${spec.files.length} files in ${source.dataDir}` });
      let checks: FileCheck[] = yield* Effect.promise(() => verifyFiles(spec, source.dataDir));
      if (checks.some((c) => !c.ok)) {
        if (!source.online) return yield* fail(describeProblems(spec, checks).join("; "));
        yield* io.progress({ message: `downloading ${spec.displayName}` });
        checks = yield* Effect.tryPromise({
          try: () => downloadDataset(spec, source.dataDir),
          catch: (e) =>
            new StageError({
              message:
                `${errorMessage(e).split("\n").join("; ")} ` +
                "(offline? put the files under --data-dir; set PIPELINE_OFFLINE=1 to skip downloading)",
            }),
        });
      }
      yield* io.writeTable(
        "files",
        checks.map((c) => ({ file: c.file.relativePath, bytes: c.file.bytes, md5: c.file.md5 })),
      );
    }),
});
