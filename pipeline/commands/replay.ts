/**
 * `pipeline replay [TARGET] --check [--lock FILE] [--keep] [--remote URL]`: recomputes TARGET in a fresh temporary
 * cache (or, with --remote, fetches what the remote cache has) and compares each node with the lock or with the
 * current cache. Exit code 0 only when every node matches.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect } from "effect";
import { openStore, Store } from "../../cache/service.ts";
import { executeDag } from "../executor/dag.ts";
import { buildDag } from "../graph.ts";
import {
  cacheReference,
  compareNode,
  lockReference,
  renderComparisons,
  type NodeComparison,
  type ReplayStatus,
} from "../replay/compare.ts";
import { lockedConfig, sourcesFromFlags } from "../replay/config-sources.ts";
import { readLockFile } from "../replay/lockfile.ts";
import { positiveInt, REMOTE_FLAGS } from "./args.ts";
import { defineCommand, remoteSettings } from "./context.ts";
import { attempt, UsageError } from "./errors.ts";
import { executeWithReporter } from "./run.ts";

export const replay = defineCommand({
  name: "replay",
  store: "read",
  flags: {
    check: { type: "boolean" },
    lock: { type: "string" },
    keep: { type: "boolean" },
    jobs: { type: "string", short: "j" },
    gpus: { type: "string" },
    ...REMOTE_FLAGS,
  },
  run: (ctx) =>
    Effect.gen(function* () {
      if (!ctx.flags.check) {
        const message = "replay needs --check (recompute in a temporary cache and compare with a lock or the cache)";
        return yield* new UsageError({ message });
      }
      if (ctx.positionals.length > 1) {
        return yield* new UsageError({ message: `replay takes at most one TARGET, got also "${ctx.positionals[1]}"` });
      }
      const lockFile = ctx.flags.lock;
      const lock = lockFile === undefined ? undefined : yield* readLockFile(lockFile);
      const target = ctx.positionals[0] ?? lock?.target;
      if (target === undefined)
        return yield* new UsageError({ message: "replay needs a TARGET, or --lock FILE to take it from" });
      const jobs = yield* positiveInt(ctx.flags.jobs, "--jobs", 2);
      const gpus = yield* positiveInt(ctx.flags.gpus, "--gpus", 1);
      const { keep } = ctx.flags;
      const scratch = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "pipeline-replay-"))),
        (dir) => (keep ? Effect.void : Effect.promise(() => rm(dir, { recursive: true, force: true }))),
      );
      let resolved;
      if (lock === undefined) resolved = yield* sourcesFromFlags(ctx);
      else {
        const locked = yield* lockedConfig(ctx, lock, scratch);
        if (lock.tool.version !== ctx.tool.version) {
          ctx.err.write(
            `note: the lock was made by ${lock.tool.name} ${lock.tool.version}, this is ${ctx.tool.version}\n`,
          );
        }
        if (locked.overrides.length > 0) {
          ctx.err.write(`note: the command line overrides the lock's configuration: ${locked.overrides.join(" ")}\n`);
        }
        resolved = locked;
      }
      const { config, options } = resolved;
      const dag = yield* attempt(() => buildDag(ctx.definition.stages, config, target));
      // With a remote cache, the temporary cache takes what the remote has (verified blob by blob) instead of
      // recomputing it: a check of the remote's artifacts against the lock. It never uploads.
      const remote = yield* remoteSettings(ctx.flags, ctx, ctx.project);
      const replayStore = yield* openStore(join(scratch, "cache"), {}, remote && { ...remote, upload: false });
      const from = remote === undefined ? "recomputing" : `fetching from ${remote.url} or recomputing`;
      ctx.err.write(`replay ${target}: ${from} ${dag.order.length} nodes in ${replayStore.paths.root}\n`);
      const results = yield* executeWithReporter(ctx, (onEvent) =>
        executeDag(dag, ctx.definition.layer(options), { jobs, gpus, onEvent, tool: ctx.tool }),
      ).pipe(
        Effect.provideService(Store, replayStore),
        Effect.onInterrupt(() => Effect.sync(() => ctx.err.write("interrupted: nothing was compared\n"))),
      );
      const referenceName = lock === undefined ? "cache" : "lock";
      const reference = lock === undefined ? yield* cacheReference(dag) : lockReference(lock);
      const comparisons: NodeComparison[] = [];
      const mismatched = new Set<string>();
      for (const result of results) {
        const c = yield* Effect.promise(() =>
          compareNode(dag, result, reference.get(result.id), referenceName, mismatched),
        );
        if (c.status !== "match") mismatched.add(c.id);
        comparisons.push(c);
      }
      if (lock !== undefined && target === lock.target) {
        for (const [id, n] of Object.entries(lock.nodes)) {
          if (dag.nodes.has(id)) continue;
          const detail = "in the lock but not in the replayed graph (configuration or code changed)";
          comparisons.push({
            id,
            status: "MISMATCH",
            key: null,
            referenceKey: n.key,
            differences: [{ artifact: null, detail }],
          });
        }
      }
      const ok = comparisons.every((c) => c.status === "match");
      const count = (s: ReplayStatus) => comparisons.filter((c) => c.status === s).length;
      const store = yield* Store;
      const against = referenceName === "lock" ? `lock ${lockFile}` : `cache ${store.paths.root}`;
      const summary =
        `replay ${target} against the ${against}: ${count("match")} match, ${count("MISMATCH")} mismatch, ` +
        `${count("no reference")} no reference, ${count("failed")} failed`;
      if (ctx.common.json) {
        const replayCache = keep ? replayStore.paths.root : null;
        const json = {
          target,
          reference: referenceName,
          lockFile: lockFile ?? null,
          replayCache,
          ok,
          nodes: comparisons,
        };
        ctx.out.write(`${JSON.stringify(json, null, 2)}\n`);
        ctx.err.write(`${summary}\n`);
      } else {
        ctx.out.write(`${renderComparisons(comparisons, referenceName)}\n${summary}\n`);
      }
      if (keep) ctx.err.write(`kept the replay cache at ${replayStore.paths.root}\n`);
      return ok ? 0 : 1;
    }).pipe(Effect.scoped),
});
