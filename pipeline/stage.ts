/**
 * The stage contract: everything the engine knows about a unit of work.
 *
 * A stage is declared once (name, version, parameter schema, inputs, outputs, resources, run) and expands into
 * one DAG node per parameter value. The engine knows nothing about what a stage computes; a stage knows nothing
 * about the cache: it reads its inputs and writes its outputs through the `StageIO` service.
 */
import { Context, Data, Effect, Schema, type Stream } from "effect";
import type { Row, RowOf, TableOutput } from "./table.ts";

/** Where a stage wants to run; gpu stages are additionally limited to the number of GPUs. */
export type Resource = "cpu" | "gpu";

/**
 * What one batch job of a stage asks a cluster scheduler for: CPUs, memory (e.g. "8G") and a time limit (e.g.
 * "4:00:00"). The configuration may override each per stage (`slurm.stages.<stage>`); gpu stages also get a GPU.
 */
export interface JobResources {
  readonly cpus?: number;
  readonly mem?: string;
  readonly time?: string;
}

/** An opaque file artifact (e.g. a model's weights) that the stage writes itself. */
export interface FileOutput {
  readonly kind: "file";
  readonly description: string;
}

export type OutputSpec = TableOutput | FileOutput;

/** A stage's outputs by artifact name. */
export type Outputs = Readonly<Record<string, OutputSpec>>;

export const file = (description: string): FileOutput => ({ kind: "file", description });

/** Type only: the stage a dependency points at. */
declare const UpstreamStage: unique symbol;

/** A reference to another node: a stage name and its (encoded) parameters; typed by the stage it points at. */
export interface Dependency<S = unknown> {
  readonly stage: string;
  readonly params: unknown;
  readonly [UpstreamStage]?: S;
}

/** A stage's inputs by local name. */
export type Inputs = Readonly<Record<string, Dependency>>;

/** A failure a stage reports on purpose: a one-line message for the user, no stack trace. */
export class StageError extends Data.TaggedError("StageError")<{ readonly message: string }> {}

export const fail = (message: string) => Effect.fail(new StageError({ message }));

/** The message of anything thrown, for one-line errors. */
export const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Runs `f`; what it throws becomes a StageError `what: message`. */
export const attempt = <A>(what: string, f: () => A): Effect.Effect<A, StageError> =>
  Effect.try({ try: f, catch: (e) => new StageError({ message: `${what}: ${errorMessage(e)}` }) });

/** Awaits `f`; its rejection becomes a StageError `what: message`. The signal aborts when the fiber is interrupted. */
export const attemptPromise = <A>(
  what: string,
  f: (signal: AbortSignal) => PromiseLike<A>,
): Effect.Effect<A, StageError> =>
  Effect.tryPromise({ try: f, catch: (e) => new StageError({ message: `${what}: ${errorMessage(e)}` }) });

/** Rows a table writer consumes: any iterable, or a stream (e.g. produced batch by batch while it is written). */
export type TableRows<A> = Iterable<A> | Stream.Stream<A, StageError>;

/**
 * The engine's view of the running node, by artifact and input name: inputs to read, outputs to write, progress to
 * report. Stages see it typed by their declaration (`StageIOOf`); this untyped form is what the engine provides.
 */
export interface StageIOService {
  /** Local names of this node's inputs, in declaration order. */
  readonly inputNames: ReadonlyArray<string>;
  /** The name of the stage an input is bound to. */
  readonly inputStage: (input: string) => string | undefined;
  /** The decoded parameters of the upstream node bound to an input. */
  readonly inputParams: (input: string) => unknown;
  /** The run-time facts an upstream node recorded (backend, versions, threads): for reports, not part of any key. */
  readonly inputRuntime: (input: string) => Readonly<Record<string, unknown>>;
  /** Reads every row of an upstream table artifact, checked against the table's declaration. */
  readonly readTable: (input: string, artifact: string) => Effect.Effect<ReadonlyArray<Row>, StageError>;
  /** The rows of an upstream table artifact in order, one chunk per row group (memory does not grow with the table). */
  readonly streamTable: (input: string, artifact: string) => Stream.Stream<Row, StageError>;
  /** Absolute path of an upstream file artifact (read-only). */
  readonly inputPath: (input: string, artifact: string) => Effect.Effect<string, StageError>;
  /** Writes a declared table output, rows in order; a stream is consumed as it is produced. */
  readonly writeTable: (artifact: string, rows: TableRows<Row>) => Effect.Effect<void, StageError>;
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

/** The names of an outputs record's tables (literal keys only: an index signature of file outputs names no table). */
type TableNames<O> = keyof {
  readonly [K in keyof O as string extends K ? never : O[K] extends TableOutput<unknown> ? K : never]: O[K];
} &
  string;
/** Outputs that may be files (every name, for an `Outputs` record declared without literal names). */
type FileNames<O> = keyof { readonly [K in keyof O as FileOutput extends O[K] ? K : never]: O[K] } & string;
type OutputsOf<S> = S extends { readonly outputs: infer O } ? O : never;
type ParamsOf<S> = S extends { readonly params: Schema.Schema<infer P, infer _I, never> } ? P : never;
type UpstreamOf<D> = D extends Dependency<infer S> ? S : never;

/** A finished node of parameters `P` and outputs `O`: its parameters and typed reads of its artifacts. */
export interface FinishedNode<P, O> {
  /** The local input name (for a node read as an input), or the node's id. */
  readonly name: string;
  readonly params: P;
  /** The run-time facts the node recorded (backend, versions, threads). */
  readonly runtime: Readonly<Record<string, unknown>>;
  readonly readTable: <A extends TableNames<O>>(artifact: A) => Effect.Effect<ReadonlyArray<RowOf<O[A]>>, StageError>;
  readonly streamTable: <A extends TableNames<O>>(artifact: A) => Stream.Stream<RowOf<O[A]>, StageError>;
  /** Absolute path of a file artifact (read-only). */
  readonly path: (artifact: FileNames<O>) => Effect.Effect<string, StageError>;
}

/** One upstream node as a stage sees it. */
export type Upstream<S> = FinishedNode<ParamsOf<S>, OutputsOf<S>>;

/** The untyped reads of one finished node's artifacts, as the engine provides them. */
export interface NodeReader {
  readonly readTable: (artifact: string) => Effect.Effect<ReadonlyArray<Row>, StageError>;
  readonly streamTable: (artifact: string) => Stream.Stream<Row, StageError>;
  readonly path: (artifact: string) => Effect.Effect<string, StageError>;
}

/** A node's reads typed by its declaration (sound: every table read is checked against that declaration). */
export const finishedNode = <P, O>(
  name: string,
  params: unknown,
  runtime: Readonly<Record<string, unknown>>,
  reader: NodeReader,
): FinishedNode<P, O> => ({
  name,
  params: params as P,
  runtime,
  readTable: (artifact) => reader.readTable(artifact) as Effect.Effect<ReadonlyArray<never>, StageError>,
  streamTable: (artifact) => reader.streamTable(artifact) as Stream.Stream<never, StageError>,
  path: (artifact) => reader.path(artifact),
});

/** What `run --dry-run` shows of a node before running it: its key parameters and, if known, its expected time. */
export interface NodePreview {
  /** e.g. `3 epochs x 60000 images, batch 128`. */
  readonly work: string;
  /** Estimated seconds on this machine, from measured throughput; undefined when nothing was measured. */
  readonly seconds?: number;
}

/** StageIO typed by a stage's inputs `I` and outputs `O`: what a stage's `run` receives. */
export interface StageIOOf<I, O> extends Pick<StageIOService, "scratchDir" | "log" | "progress" | "recordRuntime"> {
  /** A declared input. */
  readonly input: <K extends keyof I & string>(name: K) => Upstream<UpstreamOf<I[K]>>;
  /** Every input bound to a node of `stage`, in declaration order: the runs a stage fans in over. */
  readonly inputsOf: <S extends AnyStageDefinition>(stage: S) => ReadonlyArray<Upstream<S>>;
  readonly writeTable: <A extends TableNames<O>>(
    artifact: A,
    rows: TableRows<RowOf<O[A]>>,
  ) => Effect.Effect<void, StageError>;
  readonly outputPath: (artifact: FileNames<O>) => string;
}

/** What every stage definition has, whatever its types: enough to name it as an upstream stage. */
interface AnyStageDefinition {
  readonly name: string;
  // `any` lets a stage of any parameter type be passed where only its name and declaration are read.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly params: Schema.Schema<any, any, never>;
  readonly outputs: Outputs;
}

/**
 * A stage declaration as the engine sees it. `P` is the decoded parameter type, `C` the pipeline's configuration
 * type, `R` the services the stage needs beyond StageIO (provided by the pipeline definition's layer), `I` and `O` its
 * inputs and outputs (which type its reads and writes).
 */
export interface StageDefinition<P, C, R = never, I extends Inputs = Inputs, O extends Outputs = Outputs> {
  readonly name: string;
  /** Bump to invalidate every cached artifact of this stage (a change of what it computes). */
  readonly version: string;
  readonly description: string;
  // `any` erases the encoded parameter type, which Schema holds invariantly: the engine only encodes and decodes.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly params: Schema.Schema<P, any, never>;
  readonly resources: Resource;
  /** Its batch jobs' CPUs, memory and time limit, when a cluster executor computes it (defaults otherwise). */
  readonly jobResources?: JobResources;
  /** The nodes this stage stands for when it is the target under a configuration. */
  readonly instances: (config: C) => ReadonlyArray<P>;
  /** Upstream nodes, by local input name. */
  readonly inputs: (params: P, config: C) => I;
  readonly outputs: O;
  /** A short human label for a node, e.g. `mnist,L=4`; defaults to all parameters. */
  readonly label?: (params: P) => string;
  /** The node's work and estimated time, for `run --dry-run`. */
  readonly preview?: (params: P) => NodePreview;
  /** One line on what a finished node found (e.g. `test error 0.78 %`), read from its artifacts; shown after a run. */
  readonly summarize?: (node: FinishedNode<P, O>) => Effect.Effect<string, StageError>;
  readonly run: (params: P) => Effect.Effect<void, StageError, StageIO | R>;
}

// `any` here erases the parameter type so that stages of different parameter types share one registry.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyStage<C, R> = StageDefinition<any, C, R | StageIO>;

/** What a stage module declares: its `run` gets the node's StageIO typed by the stage's inputs and outputs. */
export interface StageDeclaration<P, C, R, I extends Inputs, O extends Outputs> extends Omit<
  StageDefinition<P, C, R, I, O>,
  "run"
> {
  readonly run: (params: P, io: StageIOOf<I, O>) => Effect.Effect<void, StageError, R>;
}

/**
 * StageIO typed by a declaration. The cast is sound because the engine writes only rows that fit the declared
 * columns (reads are typed by `finishedNode`).
 */
const typedIO = <I, O>(io: StageIOService): StageIOOf<I, O> => {
  const upstream = <S>(name: string): Upstream<S> =>
    finishedNode(name, io.inputParams(name), io.inputRuntime(name), {
      readTable: (artifact) => io.readTable(name, artifact),
      streamTable: (artifact) => io.streamTable(name, artifact),
      path: (artifact) => io.inputPath(name, artifact),
    });
  return {
    scratchDir: io.scratchDir,
    log: io.log,
    progress: io.progress,
    recordRuntime: io.recordRuntime,
    input: (name) => upstream(name),
    inputsOf: (stage) =>
      io.inputNames.filter((name) => io.inputStage(name) === stage.name).map((name) => upstream(name)),
    writeTable: (artifact, rows) => io.writeTable(artifact, rows as TableRows<Row>),
    outputPath: io.outputPath,
  };
};

/** Declares a stage: infers its types from the declaration and hands its `run` the typed StageIO. */
export const defineStage = <P, C, R = never, I extends Inputs = Inputs, O extends Outputs = Outputs>(
  stage: StageDeclaration<P, C, R, I, O>,
): StageDefinition<P, C, R, I, O> => ({
  ...stage,
  run: (params) => Effect.flatMap(StageIO, (io) => stage.run(params, typedIO<I, O>(io))),
});

/** Builds a dependency on a stage with typed parameters. */
export const dependOn = <P, C, R, I extends Inputs, O extends Outputs>(
  stage: StageDefinition<P, C, R, I, O>,
  params: P,
): Dependency<StageDefinition<P, C, R, I, O>> => ({
  stage: stage.name,
  params: Schema.encodeSync(stage.params)(params),
});
