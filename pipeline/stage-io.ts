/**
 * The StageIO service bound to one running node: its upstream artifacts (read-only), its staging directory (where its
 * outputs are written before the atomic commit) and its durable scratch directory.
 */
import { join } from "node:path";
import { Effect } from "effect";
import type { StoreService } from "../cache/service.ts";
import type { Staging } from "../cache/store.ts";
import type { NodeResult } from "./executor.ts";
import type { DagNode } from "./graph.ts";
import { readParquet, readParquetBatches, writeParquet } from "./parquet.ts";
import { StageError, type Row, type StageIOService } from "./stage.ts";

const tryStage = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (e) => new StageError({ message: `${what}: ${(e as Error)?.message ?? e}` }) });

interface StagedArtifact {
  readonly file: string;
  readonly kind: "table" | "file";
  readonly rows?: number;
  readonly schema?: unknown;
}

/** Binds StageIO to one node: its upstream artifacts (read-only), its staging directory and its scratch directory. */
export const makeStageIO = <C, R>(
  node: DagNode<C, R>,
  upstream: Readonly<Record<string, NodeResult>>,
  staging: Staging,
  store: StoreService,
  key: string,
  onProgress: (u: { fraction?: number; message?: string }) => void,
  onLog: (message: string) => void,
) => {
  const written = new Map<string, StagedArtifact>();
  const runtime: Record<string, unknown> = {};
  const outputs = node.stage.outputs;

  const artifactPath = (input: string, artifact: string): Effect.Effect<string, StageError> => {
    const r = upstream[input];
    if (r === undefined) return Effect.fail(new StageError({ message: `${node.id} has no input "${input}"` }));
    const entry = r.manifest!.artifacts[artifact];
    if (entry === undefined) {
      return Effect.fail(new StageError({ message: `input ${input} (${r.id}) has no artifact "${artifact}"` }));
    }
    return Effect.succeed(join(r.dir!, entry.file));
  };

  const service: StageIOService = {
    inputNames: Object.keys(node.deps),
    inputParams: (input) => {
      const depId = node.deps[input];
      return depId === undefined ? undefined : upstream[input]?.manifest?.params;
    },
    inputRuntime: (input) => upstream[input]?.manifest?.runtime ?? {},
    readTable: (input, artifact) =>
      Effect.flatMap(artifactPath(input, artifact), (path) =>
        tryStage(`cannot read ${input}/${artifact}`, () => readParquet(path)),
      ),
    forEachRowBatch: (input, artifact, onBatch) =>
      Effect.flatMap(artifactPath(input, artifact), (path) =>
        Effect.flatMap(Effect.runtime<never>(), (rt) =>
          tryStage(`cannot read ${input}/${artifact}`, () =>
            readParquetBatches(path, (rows: ReadonlyArray<Row>) =>
              Effect.runPromise(Effect.provide(onBatch(rows), rt)),
            ),
          ),
        ),
      ).pipe(Effect.asVoid),
    inputPath: artifactPath,
    writeTable: (artifact, rows) => {
      const spec = outputs[artifact];
      if (spec === undefined || spec.kind !== "table") {
        return Effect.fail(new StageError({ message: `${node.stage.name} declares no table output "${artifact}"` }));
      }
      const file = `${artifact}.parquet`;
      return tryStage(`cannot write ${artifact}`, () => writeParquet(join(staging.dir, file), spec, rows)).pipe(
        Effect.map((count) => {
          written.set(artifact, { file, kind: "table", rows: count, schema: spec.columns });
        }),
      );
    },
    outputPath: (artifact) => {
      const spec = outputs[artifact];
      if (spec === undefined || spec.kind !== "file") {
        throw new Error(`${node.stage.name} declares no file output "${artifact}"`);
      }
      written.set(artifact, { file: artifact, kind: "file" });
      return join(staging.dir, artifact);
    },
    scratchDir: Effect.mapError(
      store.scratchDir(key),
      (e) => new StageError({ message: `cannot create the scratch directory: ${e.message}` }),
    ),
    progress: (u) => Effect.sync(() => onProgress(u)),
    log: (message) => Effect.sync(() => onLog(message)),
    recordRuntime: (k, v) =>
      Effect.sync(() => {
        runtime[k] = v;
      }),
  };

  const finish = Effect.suspend(() => {
    const missing = Object.keys(outputs).filter((name) => !written.has(name));
    if (missing.length > 0) {
      return Effect.fail(new StageError({ message: `${node.id} did not write its output(s): ${missing.join(", ")}` }));
    }
    return Effect.succeed(Object.fromEntries(written));
  });

  return { service, finish, runtime };
};

