/**
 * The executor: runs a DAG's nodes in dependency order with bounded concurrency.
 *
 * Every node waits for its inputs, then either reuses a cached artifact (same key), fetches it from the remote cache
 * when one is in use, or runs its stage under a per-key lock into a staging directory that is committed atomically
 * (and then uploaded to the remote, unless uploads are off). A failing node fails only the nodes below
 * it; interruption (Ctrl-C) discards staging directories and releases locks, so nothing half-written is cached.
 * A cache operation that fails (a StoreError) fails the node with a one-line message, like a stage's own failure.
 */
import { appendFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Cause, Deferred, Effect, Exit, Layer, Option } from "effect";
import { Store, type StoreError } from "../cache/service.ts";
import type { FetchResult } from "../cache/remote/transfer.ts";
import type { Manifest } from "../cache/store.ts";
import { formatBytes } from "./commands/plan-view.ts";
import type { Dag, DagNode } from "./graph.ts";
import { deriveKey, explainMiss, refDigest } from "./plan.ts";
import { StageError, StageIO } from "./stage.ts";
import { makeStageIO } from "./stage-io.ts";

export type NodeStatus = "ran" | "cached" | "failed" | "skipped";

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
}

export type ExecEvent =
  | { readonly type: "start"; readonly id: string; readonly reason: string }
  | { readonly type: "progress"; readonly id: string; readonly fraction?: number; readonly message?: string }
  | { readonly type: "log"; readonly id: string; readonly message: string }
  | { readonly type: "waiting"; readonly id: string; readonly holderPid: number }
  | { readonly type: "corrupt"; readonly id: string; readonly reason: string }
  | { readonly type: "finish"; readonly result: NodeResult };

export interface ExecuteOptions {
  readonly jobs: number;
  readonly gpus: number;
  readonly force?: ReadonlySet<string>;
  readonly onEvent?: (event: ExecEvent) => void;
  readonly tool: { readonly name: string; readonly version: string };
}

const messageOf = (cause: Cause.Cause<unknown>): { message: string; defect: boolean } => {
  const failure = Cause.failureOption(cause);
  if (Option.isSome(failure)) {
    const e = failure.value;
    return { message: e instanceof StageError ? e.message : String((e as Error)?.message ?? e), defect: false };
  }
  if (Cause.isInterruptedOnly(cause)) return { message: "interrupted", defect: false };
  const defect = Cause.dieOption(cause);
  const d = Option.getOrUndefined(defect);
  return { message: d instanceof Error ? `${d.name}: ${d.message}` : String(d), defect: true };
};

/** A cache failure as the node's failure: "<what>: <the store's message>". */
const asStageError = (what: string) => (e: StoreError) => new StageError({ message: `${what}: ${e.message}` });

/** Runs the nodes of `dag` (all of them, in order) on the Store and returns one result per node. Never fails. */
export const executeDag = <C, R>(
  dag: Dag<C, R>,
  layer: Layer.Layer<R>,
  options: ExecuteOptions,
): Effect.Effect<ReadonlyArray<NodeResult>, never, Store> =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* Store;
      const services = yield* Layer.build(layer);
      const cpuSlots = yield* Effect.makeSemaphore(Math.max(1, options.jobs));
      const gpuSlots = yield* Effect.makeSemaphore(Math.max(1, options.gpus));
      const emit = options.onEvent ?? (() => {});
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

          const cachedResult = (manifest: Manifest, dir: string, reason?: string): NodeResult => ({
            id: node.id,
            stage: node.stage.name,
            status: "cached",
            key,
            manifest,
            dir,
            durationMs: Date.now() - started,
            ...(reason === undefined ? {} : { reason }),
          });
          const lookup = store.lookup(key).pipe(Effect.mapError(asStageError("cannot read the cache")));
          const note = (message: string) => emit({ type: "log", id: node.id, message });

          const work = Effect.scoped(
            Effect.gen(function* () {
              yield* store
                .lock(key, (holderPid) => emit({ type: "waiting", id: node.id, holderPid }))
                .pipe(Effect.mapError(asStageError("cannot lock the cache")));
              if (!forced) {
                const again = yield* lookup;
                if (again.status === "hit") return cachedResult(again.manifest, again.dir, "made by another run");
                const fetched = yield* store
                  .fetch(key, note)
                  .pipe(
                    Effect.catchAll((e) =>
                      Effect.succeed<FetchResult>({ status: "miss", reason: `remote fetch failed: ${e.message}` }),
                    ),
                  );
                if (fetched.status === "hit") {
                  const what = `${fetched.blobs} blob(s), ${formatBytes(fetched.bytes)} fetched`;
                  return cachedResult(fetched.manifest, store.artifactDir(key), `remote hit: ${what}`);
                }
                if (fetched.status === "miss" && fetched.reason !== undefined) note(fetched.reason);
              }
              const runStarted = Date.now(); // after the queue and the lock: the node's own time
              const reason = forced
                ? "forced (--force)"
                : yield* explainMiss(node, inputs).pipe(Effect.mapError(asStageError("cannot read the cache")));
              emit({ type: "start", id: node.id, reason });
              const staging = yield* store
                .stage(node.id)
                .pipe(Effect.mapError(asStageError("cannot create a staging directory")));
              const io = makeStageIO(
                dag,
                node,
                upstream,
                staging,
                store,
                key,
                (u) => emit({ type: "progress", id: node.id, ...u }),
                (message) => emit({ type: "log", id: node.id, message }),
              );
              const startedAt = new Date();
              yield* node.stage
                .run(node.params)
                .pipe(Effect.provideService(StageIO, io.service), Effect.provide(services));
              const artifacts = yield* io.finish;
              const finishedAt = new Date();
              const commit = Effect.gen(function* () {
                if (forced) yield* store.remove(key);
                return yield* store.commit(
                  staging,
                  {
                    formatVersion: 1,
                    key,
                    nodeId: node.id,
                    stage: node.stage.name,
                    version: node.stage.version,
                    params: node.encodedParams,
                    inputs: Object.fromEntries(
                      Object.entries(inputs).map(([n, b]) => [
                        n,
                        { key: b.key, nodeId: b.nodeId, artifacts: b.artifacts },
                      ]),
                    ),
                    startedAt: startedAt.toISOString(),
                    finishedAt: finishedAt.toISOString(),
                    durationMs: finishedAt.getTime() - startedAt.getTime(),
                    tool: options.tool,
                    runtime: io.runtime,
                  },
                  artifacts,
                  refDigest(node.id),
                );
              });
              const manifest = yield* commit.pipe(Effect.mapError(asStageError("cannot commit the artifact")));
              const uploaded = yield* store
                .upload(manifest, { onProgress: note })
                .pipe(Effect.catchAll((e) => Effect.sync(() => note(`not uploaded to the remote: ${e.message}`))));
              if (uploaded !== undefined) {
                const sent = `${uploaded.uploaded} blob(s), ${formatBytes(uploaded.bytes)}`;
                note(`uploaded to the remote: ${sent}; ${uploaded.present} already there`);
              }
              return {
                id: node.id,
                stage: node.stage.name,
                status: "ran",
                key,
                manifest,
                dir: store.artifactDir(key),
                durationMs: Date.now() - runStarted,
                reason,
              } satisfies NodeResult;
            }),
          );
          const limited =
            node.stage.resources === "gpu"
              ? cpuSlots.withPermits(1)(gpuSlots.withPermits(1)(work))
              : cpuSlots.withPermits(1)(work);
          // A cached node is answered before it queues for a slot.
          const cachedOrRun = Effect.flatMap(lookup, (found) => {
            if (found.status === "hit") return Effect.succeed(cachedResult(found.manifest, found.dir));
            if (found.status === "corrupt") emit({ type: "corrupt", id: node.id, reason: found.reason });
            return limited;
          });
          const exit = yield* Effect.exit(forced ? limited : cachedOrRun);
          if (Exit.isSuccess(exit)) return exit.value;
          if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt;
          const { message, defect } = messageOf(exit.cause);
          const logFile = defect ? yield* writeTrace(store.paths.root, node.id, key, exit.cause) : undefined;
          return {
            id: node.id,
            stage: node.stage.name,
            status: "failed",
            key,
            durationMs: Date.now() - started,
            error: message,
            ...(logFile === undefined ? {} : { logFile }),
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
