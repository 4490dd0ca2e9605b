/**
 * The StageIO service bound to one running node: its upstream artifacts (read-only, each table checked against the
 * upstream stage's declaration), its staging directory (where its outputs are written before the atomic commit) and
 * its durable scratch directory.
 */
import { join } from "node:path";
import { Chunk, Effect, Stream } from "effect";
import type { StoreService } from "../cache/service.ts";
import type { Staging } from "../cache/store.ts";
import type { NodeResult } from "./executor/dag.ts";
import type { Dag, DagNode } from "./graph.ts";
import { openParquetReader, openParquetWriter } from "./parquet.ts";
import {
  attempt,
  attemptPromise,
  fail,
  StageError,
  type NodeReader,
  type Outputs,
  type StageIOService,
} from "./stage.ts";
import { columnMismatch, type Row } from "./table.ts";

interface StagedArtifact {
  readonly file: string;
  readonly kind: "table" | "file";
  readonly rows?: number;
  readonly schema?: unknown;
}

/**
 * Reads of a finished node's artifacts (its manifest and directory in `result`); each table is checked against the
 * declared `outputs` before a row is returned. `what` names the node in errors.
 */
export const nodeReader = (result: NodeResult, outputs: Outputs, what: string): NodeReader => {
  const path = (artifact: string): Effect.Effect<string, StageError> => {
    const entry = result.manifest?.artifacts[artifact];
    if (entry === undefined || result.dir === undefined) return fail(`${what} has no artifact "${artifact}"`);
    return Effect.succeed(join(result.dir, entry.file));
  };
  const openTable = (artifact: string) =>
    Effect.gen(function* () {
      const file = yield* path(artifact);
      const table = `${what} table "${artifact}"`;
      const spec = outputs[artifact];
      if (spec?.kind !== "table") return yield* fail(`${table} is not a declared table`);
      const reader = yield* attemptPromise(`cannot read ${table}`, () => openParquetReader(file));
      const mismatch = columnMismatch(reader.columns, spec.columns);
      if (mismatch !== undefined) return yield* fail(`${table}: ${mismatch}`);
      return {
        rowGroups: reader.rowGroups,
        readRowGroup: (index: number) => attemptPromise(`cannot read ${table}`, () => reader.readRowGroup(index)),
      };
    });
  return {
    path,
    readTable: (artifact) =>
      Effect.gen(function* () {
        const { rowGroups, readRowGroup } = yield* openTable(artifact);
        const rows: Row[] = [];
        for (let group = 0; group < rowGroups; group++) {
          for (const row of yield* readRowGroup(group)) rows.push(row);
        }
        return rows;
      }),
    streamTable: (artifact) =>
      Stream.unwrap(
        Effect.map(openTable(artifact), ({ rowGroups, readRowGroup }) =>
          Stream.range(0, rowGroups - 1).pipe(
            Stream.mapEffect(readRowGroup),
            Stream.mapConcatChunk((rows) => Chunk.unsafeFromArray(rows)),
          ),
        ),
      ),
  };
};

/** Binds StageIO to one node: its upstream artifacts (read-only), its staging directory and its scratch directory. */
export const makeStageIO = <C, R>(
  dag: Dag<C, R>,
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
  const upstreamNode = (input: string) => {
    const id = node.deps[input];
    return id === undefined ? undefined : dag.nodes.get(id);
  };

  const inputReader = (input: string): NodeReader => {
    const r = upstream[input];
    const stage = upstreamNode(input)?.stage;
    if (r === undefined || stage === undefined) {
      const missing = Effect.fail(new StageError({ message: `${node.id} has no input "${input}"` }));
      return { readTable: () => missing, streamTable: () => Stream.fromEffect(missing), path: () => missing };
    }
    return nodeReader(r, stage.outputs, `input ${input} (${r.id})`);
  };

  const service: StageIOService = {
    inputNames: Object.keys(node.deps),
    inputStage: (input) => upstreamNode(input)?.stage.name,
    inputParams: (input) => upstreamNode(input)?.params,
    inputRuntime: (input) => upstream[input]?.manifest?.runtime ?? {},
    readTable: (input, artifact) => inputReader(input).readTable(artifact),
    streamTable: (input, artifact) => inputReader(input).streamTable(artifact),
    inputPath: (input, artifact) => inputReader(input).path(artifact),
    writeTable: (artifact, rows) =>
      Effect.gen(function* () {
        const spec = outputs[artifact];
        if (spec === undefined || spec.kind !== "table") {
          return yield* fail(`${node.stage.name} declares no table output "${artifact}"`);
        }
        const file = `${artifact}.parquet`;
        const what = `cannot write ${artifact}`;
        const out = yield* attemptPromise(what, () => openParquetWriter(join(staging.dir, file), spec.columns));
        if (Stream.StreamTypeId in rows) {
          yield* Stream.runForEachChunk(rows, (chunk) => attempt(what, () => Chunk.forEach(chunk, out.writeRow)));
        } else {
          yield* attempt(what, () => {
            for (const row of rows) out.writeRow(row);
          });
        }
        const count = yield* attempt(what, out.finish);
        written.set(artifact, { file, kind: "table", rows: count, schema: spec.columns });
      }),
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
