/**
 * The DAG scheduler: runs a DAG's nodes in dependency order.
 *
 * Every node waits for its inputs, then either reuses a cached artifact (same key) or is handed to an executor
 * (executor.ts: in this process by default, or as a batch job), which computes it under a per-key lock into a staging
 * directory that is committed atomically. A failing node fails only the nodes below it; interruption (Ctrl-C) stops
 * or cancels the work in flight, so nothing half-written is cached. A cache operation that fails (a StoreError) fails
 * the node with a one-line message, like a stage's own failure.
 */
import { appendFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Cause, Deferred, Effect, Exit, type Layer, Option } from "effect";
import { Store } from "../../cache/service.ts";
import type { Manifest } from "../../cache/store.ts";
import type { Dag, DagNode } from "../graph.ts";
import { deriveKey } from "../plan.ts";
import { StageError } from "../stage.ts";
import { JobFailed, type ExecEvent, type MakeExecutor, type NodeResult } from "./executor.ts";
import { asStageError, localExecutor } from "./local.ts";

export type { ExecEvent, JobInfo, NodeResult, NodeStatus } from "./executor.ts";

export interface ExecuteOptions {
  readonly jobs: number;
  readonly gpus: number;
  readonly force?: ReadonlySet<string>;
  readonly onEvent?: (event: ExecEvent) => void;
  readonly tool: { readonly name: string; readonly version: string };
  /** What computes the nodes that must run (default: this process, {@link localExecutor}). */
  readonly executor?: MakeExecutor;
}

const messageOf = (cause: Cause.Cause<unknown>): { message: string; defect: boolean } => {
  const failure = Cause.failureOption(cause);
  if (Option.isSome(failure)) {
    const e = failure.value;
    const planned = e instanceof StageError || e instanceof JobFailed;
    return { message: planned ? e.message : String((e as Error)?.message ?? e), defect: false };
  }
  if (Cause.isInterruptedOnly(cause)) return { message: "interrupted", defect: false };
  const defect = Cause.dieOption(cause);
  const d = Option.getOrUndefined(defect);
  return { message: d instanceof Error ? `${d.name}: ${d.message}` : String(d), defect: true };
};

/** Runs the nodes of `dag` (all of them, in order) on the Store and returns one result per node. Never fails. */
export const executeDag = <C, R>(
  dag: Dag<C, R>,
  layer: Layer.Layer<R>,
  options: ExecuteOptions,
): Effect.Effect<ReadonlyArray<NodeResult>, never, Store> =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* Store;
      const emit = options.onEvent ?? (() => {});
      const makeExecutor = options.executor ?? localExecutor;
      const executor = yield* makeExecutor<C, R>({
        layer,
        jobs: options.jobs,
        gpus: options.gpus,
        emit,
        tool: options.tool,
      });
      const done = new Map<string, Deferred.Deferred<NodeResult>>();
      for (const id of dag.order) done.set(id, yield* Deferred.make<NodeResult>());

      const runNode = (node: DagNode<C, R>): Effect.Effect<NodeResult, never, Store> =>
        Effect.gen(function* () {
          const upstream: Record<string, NodeResult> = {};
          for (const [input, depId] of Object.entries(node.deps)) {
            upstream[input] = yield* Deferred.await(done.get(depId)!);
          }
          const broken = Object.values(upstream).find((r) => r.status === "failed" || r.status === "skipped");
          if (broken !== undefined) {
            return {
              id: node.id,
              stage: node.stage.name,
              status: "skipped",
              durationMs: 0,
              reason: `upstream ${broken.id} ${broken.status === "failed" ? "failed" : "was skipped"}`,
            } satisfies NodeResult;
          }
          const manifests = new Map(Object.values(upstream).map((r) => [r.id, r.manifest]));
          const derived = deriveKey(dag, node, (depId) => manifests.get(depId));
          if ("waitingOn" in derived)
            return yield* Effect.dieMessage(`${node.id}: upstream ${derived.waitingOn} has no manifest`);
          const { key, inputs } = derived;
          const forced = options.force?.has(node.stage.name) === true;
          const started = Date.now();

          const cachedResult = (manifest: Manifest, dir: string): NodeResult => ({
            id: node.id,
            stage: node.stage.name,
            status: "cached",
            key,
            manifest,
            dir,
            durationMs: Date.now() - started,
          });
          const compute = executor.compute({ dag, node, key, inputs, upstream, forced });
          // A cached node is answered before it is handed to the executor (before it queues for a slot).
          const cachedOrCompute = Effect.flatMap(
            store.lookup(key).pipe(Effect.mapError(asStageError("cannot read the cache"))),
            (found) => {
              if (found.status === "hit") return Effect.succeed(cachedResult(found.manifest, found.dir));
              if (found.status === "corrupt") emit({ type: "corrupt", id: node.id, reason: found.reason });
              return compute;
            },
          );
          const exit = yield* Effect.exit(forced ? compute : cachedOrCompute);
          if (Exit.isSuccess(exit)) return exit.value;
          if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt;
          const { message, defect } = messageOf(exit.cause);
          const logFile = defect ? yield* writeTrace(store.paths.root, node.id, key, exit.cause) : undefined;
          const failure = Option.getOrUndefined(Cause.failureOption(exit.cause));
          return {
            id: node.id,
            stage: node.stage.name,
            status: "failed",
            key,
            durationMs: Date.now() - started,
            error: message,
            ...(logFile === undefined ? {} : { logFile }),
            ...(failure instanceof JobFailed ? { job: failure.job } : {}),
          } satisfies NodeResult;
        });

      yield* Effect.forEach(
        dag.order,
        (id) =>
          runNode(dag.nodes.get(id)!).pipe(
            Effect.tap((result) => Effect.sync(() => emit({ type: "finish", result }))),
            Effect.flatMap((result) => Deferred.succeed(done.get(id)!, result)),
          ),
        { concurrency: "unbounded", discard: true },
      );
      const results: NodeResult[] = [];
      for (const id of dag.order) results.push(yield* Deferred.await(done.get(id)!));
      return results;
    }),
  );

/** Writes a defect's full trace under <root>/logs/; its path, or undefined when it could not be written. */
const writeTrace = (root: string, nodeId: string, key: string, cause: Cause.Cause<unknown>) => {
  const dir = join(root, "logs");
  const logFile = join(dir, `${nodeId.replace(/[^\w.=,-]+/g, "_")}.log`);
  const text = `${new Date().toISOString()} ${nodeId} key=${key}\n${Cause.pretty(cause)}\n\n`;
  return Effect.tryPromise(() => mkdir(dir, { recursive: true }).then(() => appendFile(logFile, text))).pipe(
    Effect.as(logFile),
    Effect.orElseSucceed(() => undefined),
  );
};
