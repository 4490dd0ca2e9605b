/**
 * The local executor (the default): computes a ready node in this process, at most `jobs` at once and at most `gpus`
 * of gpu stages. {@link computeNode} is also what a batch job's worker (`pipeline exec-node`) runs.
 */
import { Effect, Layer, type Context } from "effect";
import type { FetchResult } from "../../cache/remote/transfer.ts";
import { Store, type StoreError } from "../../cache/service.ts";
import type { Manifest } from "../../cache/store.ts";
import { formatBytes } from "../commands/plan-view.ts";
import { explainMiss, refDigest } from "../plan.ts";
import { StageError, StageIO } from "../stage.ts";
import { makeStageIO } from "../stage-io.ts";
import type { ExecEvent, ExecutorSetup, MakeExecutor, NodeResult, ReadyNode } from "./executor.ts";

/** A cache failure as the node's failure: "<what>: <the store's message>". */
export const asStageError = (what: string) => (e: StoreError) => new StageError({ message: `${what}: ${e.message}` });

/**
 * Computes one ready node under its key's lock: looks the key up again once the lock is held (another run may have
 * committed it meanwhile: then "cached"), fetches it from the remote cache when one is in use, or runs the stage
 * into a staging directory, commits it atomically and uploads it (unless uploads are off). Interruption discards the
 * staging directory and releases the lock.
 */
export const computeNode = <C, R>(
  ready: ReadyNode<C, R>,
  services: Context.Context<R>,
  emit: (event: ExecEvent) => void,
  tool: { readonly name: string; readonly version: string },
): Effect.Effect<NodeResult, StageError, Store> =>
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* Store;
      const { dag, node, key, inputs, upstream, forced } = ready;
      const note = (message: string) => emit({ type: "log", id: node.id, message });
      const lockWaitStarted = Date.now();
      yield* store
        .lock(key, (holderPid) => emit({ type: "waiting", id: node.id, holderPid }))
        .pipe(Effect.mapError(asStageError("cannot lock the cache")));
      if (!forced) {
        const cached = (manifest: Manifest, dir: string, reason: string): NodeResult => ({
          id: node.id,
          stage: node.stage.name,
          status: "cached",
          key,
          manifest,
          dir,
          durationMs: Date.now() - lockWaitStarted,
          reason,
        });
        const again = yield* store.lookup(key).pipe(Effect.mapError(asStageError("cannot read the cache")));
        if (again.status === "hit") return cached(again.manifest, again.dir, "made by another run");
        const fetched = yield* store
          .fetch(key, note)
          .pipe(
            Effect.catchAll((e) =>
              Effect.succeed<FetchResult>({ status: "miss", reason: `remote fetch failed: ${e.message}` }),
            ),
          );
        if (fetched.status === "hit") {
          const what = `${fetched.blobs} blob(s), ${formatBytes(fetched.bytes)} fetched`;
          return cached(fetched.manifest, store.artifactDir(key), `remote hit: ${what}`);
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
        note,
      );
      const startedAt = new Date();
      yield* node.stage.run(node.params).pipe(Effect.provideService(StageIO, io.service), Effect.provide(services));
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
              Object.entries(inputs).map(([n, b]) => [n, { key: b.key, nodeId: b.nodeId, artifacts: b.artifacts }]),
            ),
            startedAt: startedAt.toISOString(),
            finishedAt: finishedAt.toISOString(),
            durationMs: finishedAt.getTime() - startedAt.getTime(),
            tool,
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

/** Computes nodes as fibers of this process: today's behaviour, and the default. */
export const localExecutor: MakeExecutor = <C, R>(setup: ExecutorSetup<R>) =>
  Effect.gen(function* () {
    const services = yield* Layer.build(setup.layer);
    const cpuSlots = yield* Effect.makeSemaphore(Math.max(1, setup.jobs));
    const gpuSlots = yield* Effect.makeSemaphore(Math.max(1, setup.gpus));
    return {
      compute: (ready: ReadyNode<C, R>) => {
        const work = computeNode(ready, services, setup.emit, setup.tool);
        return ready.node.stage.resources === "gpu"
          ? cpuSlots.withPermits(1)(gpuSlots.withPermits(1)(work))
          : cpuSlots.withPermits(1)(work);
      },
    };
  });
