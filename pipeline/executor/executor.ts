/**
 * The executor seam: what computes a node once it is ready. The DAG scheduler (dag.ts) waits for a node's inputs,
 * derives its key and answers a cached node itself; only a node that must be computed is handed to an executor:
 * `local` computes it in this process (local.ts), `slurm` as a batch job on a cluster (batch.ts over slurm.ts).
 */
import { Data, type Effect, type Layer, type Scope } from "effect";
import type { Store } from "../../cache/service.ts";
import type { Manifest } from "../../cache/store.ts";
import type { Dag, DagNode } from "../graph.ts";
import type { InputBinding } from "../plan.ts";
import type { StageError } from "../stage.ts";

export type NodeStatus = "ran" | "cached" | "failed" | "skipped";

/** The batch job that computed (or failed to compute) a node. */
export interface JobInfo {
  /** The scheduler's name, e.g. "Slurm". */
  readonly scheduler: string;
  readonly id: string;
  /** The scheduler's final state of the job, e.g. COMPLETED, TIMEOUT. */
  readonly state: string;
  /** The job's stdout and stderr. */
  readonly log: string;
  /** From submission until the worker process started, when the worker recorded it. */
  readonly queuedMs?: number;
}

export interface NodeResult {
  readonly id: string;
  readonly stage: string;
  readonly status: NodeStatus;
  readonly key?: string;
  readonly manifest?: Manifest;
  /** Directory holding the artifacts (cached or committed). */
  readonly dir?: string;
  readonly durationMs: number;
  /** Why it ran, why it was skipped, or why it failed (one line). */
  readonly reason?: string;
  readonly error?: string;
  /** Where the full failure trace was written, for defects. */
  readonly logFile?: string;
  /** The batch job of a node computed by a cluster executor. */
  readonly job?: JobInfo;
}

export type ExecEvent =
  | { readonly type: "start"; readonly id: string; readonly reason: string }
  | { readonly type: "progress"; readonly id: string; readonly fraction?: number; readonly message?: string }
  | { readonly type: "log"; readonly id: string; readonly message: string }
  | { readonly type: "waiting"; readonly id: string; readonly holderPid: number }
  | { readonly type: "corrupt"; readonly id: string; readonly reason: string }
  | { readonly type: "finish"; readonly result: NodeResult };

/** A node whose inputs are all committed and whose key is known, that must be computed. */
export interface ReadyNode<C, R> {
  readonly dag: Dag<C, R>;
  readonly node: DagNode<C, R>;
  readonly key: string;
  readonly inputs: Readonly<Record<string, InputBinding>>;
  /** The upstream nodes' results by input name (each with its manifest and directory). */
  readonly upstream: Readonly<Record<string, NodeResult>>;
  /** Recompute even when cached (--force). */
  readonly forced: boolean;
}

/** A batch job ended without committing its node: the one-line message names the job's state and its log. */
export class JobFailed extends Data.TaggedError("JobFailed")<{ readonly message: string; readonly job: JobInfo }> {}

export interface Executor<C, R> {
  /**
   * Computes and commits a ready node: a "ran" result, or "cached" when another run committed the key meanwhile.
   * Interrupting it stops (or cancels) the work, and nothing half-written is committed.
   */
  readonly compute: (ready: ReadyNode<C, R>) => Effect.Effect<NodeResult, StageError | JobFailed, Store>;
}

/** What an executor is built from, once per execution. */
export interface ExecutorSetup<R> {
  /** The services the stages need (built only by executors that run stages in this process). */
  readonly layer: Layer.Layer<R>;
  /** Nodes computed at once: local fibers, or batch jobs in flight. */
  readonly jobs: number;
  /** Nodes of gpu stages computed at once in this process. */
  readonly gpus: number;
  readonly emit: (event: ExecEvent) => void;
  /** Recorded in every manifest. */
  readonly tool: { readonly name: string; readonly version: string };
}

/** Builds an executor for one execution; what it starts (services, a poller) lives until the execution's scope ends. */
export type MakeExecutor = <C, R>(setup: ExecutorSetup<R>) => Effect.Effect<Executor<C, R>, never, Scope.Scope | Store>;
