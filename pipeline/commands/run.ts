/**
 * `pipeline run TARGET`: computes TARGET, reusing cached artifacts (and a remote cache's, with --remote); in this
 * process (`--executor local`, the default) or as Slurm jobs (`--executor slurm`, env PIPELINE_EXECUTOR).
 */
import { chmod, copyFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { Effect, Exit } from "effect";
import { makeDirs } from "../../cache/fsutil.ts";
import { leasedStore } from "../../cache/leases.ts";
import { Store, type StoreService } from "../../cache/service.ts";
import { batchExecutor } from "../executor/batch.ts";
import { executeDag, type NodeResult } from "../executor/dag.ts";
import type { MakeExecutor } from "../executor/executor.ts";
import { createRun, newRunId, runDir, type RunRecord } from "../executor/run-record.ts";
import { checkSlurm, slurmScheduler, type SlurmSettings } from "../executor/slurm.ts";
import { buildDag } from "../graph.ts";
import { planCounts, planDag, type Plan, type PlanEntry } from "../plan.ts";
import { finishLine, makeReporter } from "../progress.ts";
import { sourcesFromFlags } from "../replay/config-sources.ts";
import type { ConfigSourcesJson } from "../replay/lockfile.ts";
import { finishRunRecord, plannedKeys, startRunRecord, type RecordedRun } from "../runs.ts";
import { errorMessage } from "../stage.ts";
import { resultsBlock, summarizeResults } from "../summary.ts";
import { runsDir } from "../workspace.ts";
import { positiveInt, REMOTE_FLAGS, type FlagSpecs } from "./args.ts";
import { defineCommand, type CommandContext, type Output } from "./context.ts";
import { attempt, fileSystemError, UsageError, type UserError } from "./errors.ts";
import { estimateLine, planEntryJson, planLines } from "./plan-view.ts";

const EXECUTORS = ["local", "slurm"] as const;

/** Batch jobs in flight at once when --jobs is not given. */
const DEFAULT_SLURM_JOBS = 100;

export const run = defineCommand({
  name: "run",
  store: "write",
  flags: {
    out: { type: "string" },
    "dry-run": { type: "boolean" },
    force: { type: "string", multiple: true },
    jobs: { type: "string", short: "j" },
    gpus: { type: "string" },
    executor: { type: "string" },
    retries: { type: "string" },
    ...REMOTE_FLAGS,
  },
  remote: true,
  run: (ctx) =>
    Effect.gen(function* () {
      const store = yield* Store;
      const target = ctx.positionals[0];
      if (target === undefined) return yield* new UsageError({ message: "run needs a TARGET (a stage name or all)" });
      const executorName = ctx.flags.executor ?? process.env.PIPELINE_EXECUTOR ?? "local";
      if (!(EXECUTORS as ReadonlyArray<string>).includes(executorName)) {
        const message = `--executor expects ${EXECUTORS.join(" or ")}, got "${executorName}"`;
        return yield* new UsageError({ message });
      }
      const onSlurm = executorName === "slurm";
      const jobs = yield* positiveInt(ctx.flags.jobs, "--jobs", onSlurm ? DEFAULT_SLURM_JOBS : 2);
      const gpus = yield* positiveInt(ctx.flags.gpus, "--gpus", 1);
      const retries = yield* positiveInt(ctx.flags.retries, "--retries", 0, true);
      if (retries > 0 && !onSlurm) return yield* new UsageError({ message: "--retries needs --executor slurm" });
      const force = new Set(ctx.flags.force);
      for (const s of force) {
        if (!ctx.definition.stages.some((st) => st.name === s)) {
          return yield* new UsageError({ message: `--force: unknown stage "${s}"` });
        }
      }
      const dryRun = ctx.flags["dry-run"];
      const { sources, config, slurm: slurmSettings } = yield* sourcesFromFlags(ctx);
      const slurm = onSlurm ? slurmSettings : undefined;
      if (slurm !== undefined && !dryRun)
        yield* checkSlurm(
          slurm,
          ctx.definition.stages.map((st) => st.name),
        );
      const t0 = performance.now();
      const dag = yield* attempt(() => buildDag(ctx.definition.stages, config, target));
      const plan = yield* planDag(dag, { force, remote: true });
      const counts = planCounts(plan);
      const planMs = performance.now() - t0;
      const { json } = ctx.common;
      const remote = store.remote === undefined ? "" : `${counts.remote} in the remote, `;
      ctx.err.write(
        `plan ${target}: ${dag.order.length} nodes, ${counts.cached} cached, ${remote}${counts.run} to run, ` +
          `${counts.pending} pending (${planMs.toFixed(0)} ms)\n`,
      );
      if (counts.run + counts.pending + counts.remote > 0 || dryRun) {
        const shown = planLines(dag, plan, { preview: dryRun }).filter(
          (_, i) => dryRun || plan.entries.get(dag.order[i]!)!.status !== "cached",
        );
        ctx.err.write(`${shown.join("\n")}\n`);
      }
      for (const c of plan.corrupt)
        ctx.err.write(`corrupt  ${c.nodeId}: ${c.reason}; moved to quarantine, will recompute\n`);
      if (dryRun) {
        ctx.err.write(estimateLine(dag, plan));
        if (json) {
          const nodes = dag.order.map((id) => ({ id, ...planEntryJson(plan, id) }));
          ctx.out.write(`${JSON.stringify({ target, dryRun: true, nodes }, null, 2)}\n`);
        }
        return 0;
      }
      const record = yield* startRun(ctx, { target, cache: store.paths.root, configSources: sources, plan });
      if (counts.run + counts.pending + counts.remote === 0 && force.size === 0 && ctx.flags.out === undefined) {
        // Nothing to do: the plan already looked every node up, so report it without a second pass.
        const results: NodeResult[] = dag.order.map((id) => {
          const e = plan.entries.get(id)! as Extract<PlanEntry, { status: "cached" }>;
          const stage = dag.nodes.get(id)!.stage.name;
          return {
            id,
            stage,
            status: "cached",
            key: e.key,
            manifest: e.manifest,
            dir: store.artifactDir(e.key),
            durationMs: 0,
          };
        });
        yield* finishRun(ctx, record, Exit.succeed(results));
        ctx.err.write(
          `summary: 0 ran, ${results.length} cached, 0 failed, 0 skipped in ${(planMs / 1000).toFixed(2)} s\n`,
        );
        ctx.err.write(resultsBlock(yield* summarizeResults(dag, results)));
        if (json)
          ctx.out.write(
            `${JSON.stringify({ target, wallMs: Math.round(planMs), nodes: results.map(nodeJson) }, null, 2)}\n`,
          );
        return 0;
      }
      const executor = slurm === undefined ? undefined : yield* slurmExecutor(ctx, store, sources, slurm, retries);
      const started = performance.now();
      // The lease keeps a concurrent gc off every key this run reads (cache/leases.ts); the plan's keys in one go.
      const leased = yield* leasedStore(store);
      yield* leased.register(Object.values(plannedKeys(plan)).filter((k) => k !== null));
      const results = yield* executeWithReporter(ctx, (onEvent) =>
        executeDag(dag, ctx.definition.layer(ctx.options), {
          jobs,
          gpus,
          force,
          onEvent,
          tool: ctx.tool,
          ...(executor === undefined ? {} : { executor }),
        }),
      ).pipe(
        Effect.provideService(Store, leased.store),
        Effect.onExit((exit) => finishRun(ctx, record, exit)),
        Effect.onInterrupt(() =>
          Effect.sync(() =>
            ctx.err.write("interrupted: nothing half-written was cached; rerun the same command to continue\n"),
          ),
        ),
      );
      const wallMs = performance.now() - started + planMs;
      const by = (s: string) => results.filter((r) => r.status === s);
      ctx.err.write(
        `summary: ${by("ran").length} ran, ${by("cached").length} cached, ${by("failed").length} failed, ` +
          `${by("skipped").length} skipped in ${(wallMs / 1000).toFixed(2)} s\n`,
      );
      for (const r of [...by("failed"), ...by("skipped")]) ctx.err.write(`  ${finishLine(r)}\n`);
      ctx.err.write(resultsBlock(yield* summarizeResults(dag, results)));
      const outDir = ctx.flags.out;
      if (outDir !== undefined) {
        const copied = yield* copyTargets(dag.targets, results, outDir);
        ctx.err.write(`copied ${copied} artifact file(s) of ${dag.targets.length} target node(s) to ${outDir}\n`);
      }
      if (json)
        ctx.out.write(
          `${JSON.stringify({ target, wallMs: Math.round(wallMs), nodes: results.map(nodeJson) }, null, 2)}\n`,
        );
      return by("failed").length + by("skipped").length > 0 ? 1 : 0;
    }).pipe(Effect.scoped),
});

/** Starts the run's record in the project (none outside a project); a project it cannot write stops the run. */
const startRun = <C, R, S extends FlagSpecs>(
  ctx: CommandContext<C, R, S>,
  run: { target: string; cache: string; configSources: ConfigSourcesJson; plan: Plan },
): Effect.Effect<RecordedRun | undefined, UserError> => {
  const root = ctx.project?.root;
  if (root === undefined) return Effect.succeed(undefined);
  const { plan, ...fields } = run;
  return Effect.tryPromise({
    try: () => startRunRecord(root, { ...fields, nodes: plannedKeys(plan) }),
    catch: (e) =>
      new UsageError({
        message: `cannot write the run record in ${runsDir(root)} (${errorMessage(e)}); nothing was computed`,
      }),
  });
};

/** Completes the run's record with how the run ended; a record that cannot be written is a note, not a failure. */
const finishRun = <C, R, S extends FlagSpecs>(
  ctx: CommandContext<C, R, S>,
  run: RecordedRun | undefined,
  exit: Exit.Exit<ReadonlyArray<NodeResult>, unknown>,
): Effect.Effect<void> => {
  if (run === undefined) return Effect.void;
  const results = Exit.isSuccess(exit) ? exit.value : [];
  const failed = results.some((r) => r.status === "failed" || r.status === "skipped");
  const outcome = Exit.isInterrupted(exit) ? "interrupted" : Exit.isFailure(exit) || failed ? "failed" : "succeeded";
  return Effect.tryPromise({ try: () => finishRunRecord(run, outcome, results), catch: errorMessage }).pipe(
    Effect.catchAll((why) =>
      Effect.sync(() => ctx.err.write(`note: cannot complete the run record ${run.file}: ${why}\n`)),
    ),
  );
};

/**
 * The Slurm executor for this run: a new run folder in the cache's logs (what the workers read: the configuration's
 * sources and the flags) and the batch executor over sbatch/sacct/scancel.
 */
const slurmExecutor = <C, R, S extends FlagSpecs>(
  ctx: CommandContext<C, R, S>,
  store: StoreService,
  sources: ConfigSourcesJson,
  settings: SlurmSettings,
  retries: number,
): Effect.Effect<MakeExecutor, UserError> =>
  Effect.gen(function* () {
    const since = new Date();
    const runId = newRunId();
    const dir = runDir(store.paths.root, runId);
    const record: RunRecord = {
      formatVersion: 1,
      runId,
      executor: "slurm",
      createdAt: since.toISOString(),
      cwd: process.cwd(),
      preset: sources.preset,
      config: sources.config,
      set: sources.set,
      options: ctx.options,
      jobs: [],
    };
    yield* Effect.tryPromise({
      try: () => createRun(dir, record),
      catch: (e) => new UsageError({ message: `cannot write the run's folder ${dir}: ${errorMessage(e)}` }),
    });
    ctx.err.write(`slurm: run ${runId} (the name of its jobs); logs in ${dir}\n`);
    const usesGpu = ctx.definition.usesGpu?.(ctx.options) ?? true;
    const pollMinMs = (settings.pollSeconds ?? 1) * 1000;
    return batchExecutor({
      scheduler: slurmScheduler(settings, since, usesGpu),
      run: record,
      runDir: dir,
      retries,
      pollMinMs,
      pollMaxMs: Math.max(pollMinMs, (settings.pollMaxSeconds ?? 60) * 1000),
      unknownLimitMs: 10 * 60_000,
      manifestGraceMs: 60_000,
    });
  });

/** Runs an execution with the progress display on stderr, closing the display however it ends. */
export const executeWithReporter = <A, E, R>(
  output: Output,
  execute: (onEvent: ReturnType<typeof makeReporter>["onEvent"]) => Effect.Effect<A, E, R>,
): Effect.Effect<A, E, R> =>
  Effect.acquireUseRelease(
    Effect.sync(() => makeReporter(output.err)),
    (reporter) => execute(reporter.onEvent),
    (reporter) => Effect.sync(() => reporter.close()),
  );

const nodeJson = (r: NodeResult) => ({
  id: r.id,
  stage: r.stage,
  status: r.status,
  key: r.key ?? null,
  artifacts: r.manifest
    ? Object.fromEntries(
        Object.entries(r.manifest.artifacts).map(([name, a]) => [
          name,
          {
            path: `${r.dir}/${a.file}`,
            sha256: a.sha256,
            bytes: a.bytes,
            ...(a.rows === undefined ? {} : { rows: a.rows }),
          },
        ]),
      )
    : {},
  durationMs: r.durationMs,
  ...(r.reason ? { reason: r.reason } : {}),
  ...(r.error ? { error: r.error } : {}),
  ...(r.job ? { job: r.job } : {}),
});

/** Copies the artifacts of the target nodes into `outDir`: flat for one target, one folder per node id otherwise. */
const copyTargets = (targets: ReadonlyArray<string>, results: ReadonlyArray<NodeResult>, outDir: string) =>
  Effect.tryPromise({
    try: async () => {
      let copied = 0;
      for (const id of targets) {
        const r = results.find((x) => x.id === id);
        if (r?.manifest === undefined || r.dir === undefined) continue;
        const dest = targets.length === 1 ? outDir : join(outDir, id.replace(/[^\w.=,-]+/g, "_"));
        await makeDirs(dest);
        for (const a of Object.values(r.manifest.artifacts)) {
          // Cached blobs are read-only and copyFile copies the mode: the copies are the user's to change.
          const copy = join(dest, a.file);
          await rm(copy, { force: true });
          await copyFile(join(r.dir, a.file), copy);
          await chmod(copy, 0o644);
          copied++;
        }
      }
      return copied;
    },
    catch: (e) =>
      fileSystemError(e, {
        what: "the --out folder",
        dir: outDir,
        flag: "--out",
        recovery: "the results are cached, so a rerun with another --out only copies them",
      }) ?? new UsageError({ message: `--out: cannot copy to ${outDir}: ${errorMessage(e)}` }),
  });
