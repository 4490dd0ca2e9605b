/**
 * The stage contract: everything the engine knows about a unit of work.
 *
 * A stage is declared once (name, version, parameter schema, inputs, outputs, resources, run) and expands into
 * one DAG node per parameter value. The engine knows nothing about what a stage computes; a stage knows nothing
 * about the cache: it reads its inputs and writes its outputs through the `StageIO` service.
 */
import { Context, Data, Effect, Schema } from "effect";

/** Where a stage wants to run; gpu stages are additionally limited to the number of GPUs. */
export type Resource = "cpu" | "gpu";

/** Parquet physical column types the engine's table writer supports. */
export type ColumnType = "INT32" | "INT64" | "DOUBLE" | "BOOLEAN" | "UTF8" | "BYTE_ARRAY";

export interface ColumnSpec {
  readonly type: ColumnType;
  /** A nullable column (null/undefined values allowed). */
  readonly optional?: boolean;
}

/** A Parquet table artifact with a fixed schema. */
export interface TableOutput {
  readonly kind: "table";
  readonly columns: Readonly<Record<string, ColumnSpec>>;
  readonly description: string;
  /**
   * Bytes that legitimately differ between identical runs (wall times). A volatile artifact is cached like any
   * other but left out of downstream keys and replay comparisons, so it never invalidates anything.
   */
  readonly volatile?: boolean;
}

/** An opaque file artifact (e.g. a model's weights) that the stage writes itself. */
export interface FileOutput {
  readonly kind: "file";
  readonly description: string;
}

export type OutputSpec = TableOutput | FileOutput;

export const table = (description: string, columns: Readonly<Record<string, ColumnSpec>>): TableOutput => ({
  kind: "table",
  columns,
  description,
});

export const volatileTable = (description: string, columns: Readonly<Record<string, ColumnSpec>>): TableOutput => ({
  kind: "table",
  columns,
  description,
  volatile: true,
});

export const file = (description: string): FileOutput => ({ kind: "file", description });

/**
 * Column specs from a compact list, `"dataset:UTF8 depth:INT32 scaledStd:DOUBLE?"`, where `?` marks a nullable
 * column. Keeps wide analysis tables declarable in one line each.
 */
export const columns = (spec: string): Record<string, ColumnSpec> =>
  Object.fromEntries(
    spec
      .trim()
      .split(/\s+/)
      .map((entry) => {
        const m = /^(\w+):(INT32|INT64|DOUBLE|BOOLEAN|UTF8|BYTE_ARRAY)(\?)?$/.exec(entry);
        if (m === null) throw new Error(`bad column spec "${entry}"`);
        return [m[1]!, m[3] === "?" ? { type: m[2] as ColumnType, optional: true } : { type: m[2] as ColumnType }];
      }),
  );

/** A reference to another node: a stage name and its (encoded) parameters. */
export interface Dependency {
  readonly stage: string;
  readonly params: unknown;
}

/** One value of a table row, as pipeline/parquet.ts reads and writes it (INT64: number when exact, else bigint). */
export type Cell = number | string | boolean | bigint | Uint8Array | null | undefined;
export type Row = Readonly<Record<string, Cell>>;

/** A failure a stage reports on purpose: a one-line message for the user, no stack trace. */
export class StageError extends Data.TaggedError("StageError")<{ readonly message: string }> {}

export const fail = (message: string) => Effect.fail(new StageError({ message }));

/** The engine's view of the running node: inputs to read, outputs to write, progress to report. */
export interface StageIOService {
  /** Local names of this node's inputs, in declaration order. */
  readonly inputNames: ReadonlyArray<string>;
  /** The (encoded) parameters of the upstream node bound to an input. */
  readonly inputParams: (input: string) => unknown;
  /** The run-time facts an upstream node recorded (backend, versions, threads): for reports, not part of any key. */
  readonly inputRuntime: (input: string) => Readonly<Record<string, unknown>>;
  /** Reads every row of an upstream table artifact. */
  readonly readTable: (input: string, artifact: string) => Effect.Effect<ReadonlyArray<Row>, StageError>;
  /** Streams the rows of an upstream table artifact in order, one callback per row batch. */
  readonly forEachRowBatch: (
    input: string,
    artifact: string,
    onBatch: (rows: ReadonlyArray<Row>) => Effect.Effect<void, StageError>,
  ) => Effect.Effect<void, StageError>;
  /** Absolute path of an upstream file artifact (read-only). */
  readonly inputPath: (input: string, artifact: string) => Effect.Effect<string, StageError>;
  /** Writes a declared table output; rows may be any (async) iterable, written in order. */
  readonly writeTable: <T extends { readonly [K in keyof T]: Cell }>(
    artifact: string,
    rows: Iterable<T> | AsyncIterable<T>,
  ) => Effect.Effect<void, StageError>;
  /** Absolute path where the stage must write a declared file output itself. */
  readonly outputPath: (artifact: string) => string;
  /** A durable directory private to this node that survives crashes (checkpoints); removed after the node succeeds. */
  readonly scratchDir: Effect.Effect<string, StageError>;
  /** Prints one line for the user under the node's name (e.g. which backend runs). */
  readonly log: (message: string) => Effect.Effect<void>;
  /** Reports progress: a fraction in [0, 1] and/or a short message. */
  readonly progress: (update: { readonly fraction?: number; readonly message?: string }) => Effect.Effect<void>;
  /** Records run-time facts (backend, library versions, threads) in the artifact's manifest. */
  readonly recordRuntime: (key: string, value: unknown) => Effect.Effect<void>;
}

export class StageIO extends Context.Tag("pipeline/StageIO")<StageIO, StageIOService>() {}

/**
 * A stage declaration. `P` is the decoded parameter type, `C` the pipeline's configuration type and `R` the
 * services the stage needs beyond StageIO (provided by the pipeline definition's layer).
 */
export interface StageDefinition<P, C, R = never> {
  readonly name: string;
  /** Bump to invalidate every cached artifact of this stage (a change of what it computes). */
  readonly version: string;
  readonly description: string;
  readonly params: Schema.Schema<P, any, never>;
  readonly resources: Resource;
  /** The nodes this stage stands for when it is the target under a configuration. */
  readonly instances: (config: C) => ReadonlyArray<P>;
  /** Upstream nodes, by local input name. */
  readonly inputs: (params: P, config: C) => Readonly<Record<string, Dependency>>;
  readonly outputs: Readonly<Record<string, OutputSpec>>;
  /** A short human label for a node, e.g. `mnist,L=4`; defaults to all parameters. */
  readonly label?: (params: P) => string;
  readonly run: (params: P) => Effect.Effect<void, StageError, StageIO | R>;
}

// `any` here erases the parameter type so that stages of different parameter types share one registry.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyStage<C, R> = StageDefinition<any, C, R | StageIO>;

/** Identity helper that infers a stage's types from its declaration. */
export const defineStage = <P, C, R = never>(stage: StageDefinition<P, C, R>): StageDefinition<P, C, R> => stage;

/** Builds a dependency on a stage with typed parameters. */
export const dependOn = <P, C, R>(stage: StageDefinition<P, C, R>, params: P): Dependency => ({
  stage: stage.name,
  params: Schema.encodeSync(stage.params)(params),
});
