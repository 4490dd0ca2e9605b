/**
 * `pipeline exec-node KEY --node ID --run DIR [--force]` (hidden): the worker a batch job runs. It rebuilds the run's
 * configuration from the run's folder, plans the node and its upstream (verifying the upstream artifacts), checks
 * that the node's key is KEY, and computes and commits the node exactly as a local run does, under the key's lock.
 * Its lines go to the job's log; its outcome (ran, cached, failed) to the run's folder, as a hint for the coordinator,
 * which trusts only the committed manifest. Exit code 0 when the node is committed, 1 when it failed.
 */
import { Cause, Effect, Exit, Layer, Option } from "effect";
import { Store } from "../../cache/service.ts";
import { loadConfig } from "../config.ts";
import { computeNode } from "../executor/local.ts";
import type { NodeResult } from "../executor/executor.ts";
import { outcomePath, readRunRecord, runConfigFile, writeOutcome } from "../executor/run-record.ts";
import { buildDag } from "../graph.ts";
import { deriveKey, planDag } from "../plan.ts";
import { makeReporter } from "../progress.ts";
import { defineCommand } from "./context.ts";
import { attempt, UsageError } from "./errors.ts";

/** When this worker process started (ms since the epoch): the end of the job's wait in the queue. */
const processStartedAtMs = Date.now() - process.uptime() * 1000;

export const execNode = defineCommand({
  name: "exec-node",
  store: "write",
  flags: { node: { type: "string" }, run: { type: "string" }, force: { type: "boolean" } },
  run: (ctx) =>
    Effect.gen(function* () {
      const store = yield* Store;
      const key = ctx.positionals[0];
      const { node: nodeId, run: runDir } = ctx.flags;
      if (key === undefined || nodeId === undefined || runDir === undefined)
        return yield* new UsageError({ message: "exec-node needs KEY, --node ID and --run DIR" });
      const record = yield* Effect.tryPromise({
        try: () => readRunRecord(runDir),
        catch: (e) => new UsageError({ message: `exec-node: cannot read the run in ${runDir}: ${String(e)}` }),
      });
      const { config } = yield* attempt(() =>
        loadConfig(ctx.definition, {
          preset: record.preset ?? undefined,
          configFile: runConfigFile(runDir, record),
          assignments: record.set,
          options: record.options,
        }),
      );
      const dag = yield* attempt(() => buildDag(ctx.definition.stages, config, nodeId));
      const node = dag.nodes.get(nodeId);
      if (node === undefined) return yield* new UsageError({ message: `exec-node: no node ${nodeId}` });
      const reporter = makeReporter(ctx.out);
      const outcomeFile = outcomePath(runDir, key);
      const finish = (status: "ran" | "cached" | "failed", error?: string) =>
        Effect.promise(() =>
          writeOutcome(outcomeFile, {
            status,
            ...(error === undefined ? {} : { error }),
            startedAtMs: processStartedAtMs,
            finishedAtMs: Date.now(),
          }),
        );
      /** The node failed: one line in the log, the message in the outcome, exit code 1. */
      const fail = (error: string) =>
        Effect.gen(function* () {
          ctx.out.write(`FAILED   ${nodeId}: ${error}\n`);
          yield* finish("failed", error);
          return 1;
        });
      const plan = yield* planDag(dag, ctx.flags.force ? { force: new Set([node.stage.name]) } : {});
      const upstream: Record<string, NodeResult> = {};
      for (const [input, depId] of Object.entries(node.deps)) {
        const entry = plan.entries.get(depId);
        if (entry?.status !== "cached") return yield* fail(`upstream ${depId} is not in the cache`);
        const stage = dag.nodes.get(depId)!.stage.name;
        const { manifest } = entry;
        const dir = store.artifactDir(entry.key);
        upstream[input] = { id: depId, stage, status: "cached", key: entry.key, manifest, dir, durationMs: 0 };
      }
      const derived = deriveKey(dag, node, (depId) => Object.values(upstream).find((r) => r.id === depId)?.manifest);
      if ("waitingOn" in derived) return yield* fail(`upstream ${derived.waitingOn} is not in the cache`);
      if (derived.key !== key)
        return yield* fail(`its key here is ${derived.key}: the configuration or the code differs from the run's`);
      if (plan.entries.get(nodeId)?.status === "cached") {
        ctx.out.write(`cached   ${nodeId} (made by another run)\n`);
        yield* finish("cached");
        return 0;
      }
      const services = yield* Layer.build(ctx.definition.layer(record.options));
      const ready = { dag, node, key, inputs: derived.inputs, upstream, forced: ctx.flags.force };
      const exit = yield* Effect.exit(
        computeNode(ready, services, reporter.onEvent, ctx.tool).pipe(
          Effect.onInterrupt(() => finish("failed", "interrupted (the job was cancelled or timed out)")),
        ),
      );
      if (Exit.isSuccess(exit)) {
        const result = exit.value;
        reporter.onEvent({ type: "finish", result });
        yield* finish(result.status === "cached" ? "cached" : "ran");
        return 0;
      }
      const failure = Cause.failureOption(exit.cause);
      if (Option.isNone(failure)) ctx.out.write(`${Cause.pretty(exit.cause)}\n`);
      return yield* fail(Option.isSome(failure) ? failure.value.message : "unexpected failure (trace above)");
    }).pipe(Effect.scoped),
});
