/** `pipeline run TARGET`: computes TARGET, reusing cached artifacts. */
import { chmod, copyFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { Effect } from "effect";
import { makeDirs } from "../../cache/fsutil.ts";
import { Store } from "../../cache/service.ts";
import { executeDag, type NodeResult } from "../executor.ts";
import { planCounts, planDag, type PlanEntry } from "../plan.ts";
import { finishLine, makeReporter } from "../progress.ts";
import { errorMessage } from "../stage.ts";
import { positiveInt, REMOTE_FLAGS } from "./args.ts";
import { dagFromFlags, defineCommand, type Output } from "./context.ts";
import { fileSystemError, UsageError } from "./errors.ts";
import { planEntryJson, planLines } from "./plan-view.ts";

export const run = defineCommand({
  name: "run",
  flags: {
    out: { type: "string" },
    "dry-run": { type: "boolean" },
    force: { type: "string", multiple: true },
    jobs: { type: "string", short: "j" },
    gpus: { type: "string" },
    ...REMOTE_FLAGS,
  },
  remote: true,
  run: (ctx) =>
    Effect.gen(function* () {
      const store = yield* Store;
      const target = ctx.positionals[0];
      if (target === undefined) return yield* new UsageError({ message: "run needs a TARGET (a stage name or all)" });
      const jobs = yield* positiveInt(ctx.flags.jobs, "--jobs", 2);
      const gpus = yield* positiveInt(ctx.flags.gpus, "--gpus", 1);
      const force = new Set(ctx.flags.force);
      for (const s of force) {
        if (!ctx.definition.stages.some((st) => st.name === s)) {
          return yield* new UsageError({ message: `--force: unknown stage "${s}"` });
        }
      }
      const dryRun = ctx.flags["dry-run"];
      const t0 = performance.now();
      const dag = yield* dagFromFlags(ctx, target);
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
        const shown = planLines(dag, plan).filter(
          (_, i) => dryRun || plan.entries.get(dag.order[i]!)!.status !== "cached",
        );
        ctx.err.write(`${shown.join("\n")}\n`);
      }
      for (const c of plan.corrupt)
        ctx.err.write(`corrupt  ${c.nodeId}: ${c.reason}; moved to quarantine, will recompute\n`);
      if (dryRun) {
        if (json) {
          const nodes = dag.order.map((id) => ({ id, ...planEntryJson(plan, id) }));
          ctx.out.write(`${JSON.stringify({ target, dryRun: true, nodes }, null, 2)}\n`);
        }
        return 0;
      }
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
        ctx.err.write(
          `summary: 0 ran, ${results.length} cached, 0 failed, 0 skipped in ${(planMs / 1000).toFixed(2)} s\n`,
        );
        if (json)
          ctx.out.write(
            `${JSON.stringify({ target, wallMs: Math.round(planMs), nodes: results.map(nodeJson) }, null, 2)}\n`,
          );
        return 0;
      }
      const started = performance.now();
      const results = yield* executeWithReporter(ctx, (onEvent) =>
        executeDag(dag, ctx.definition.layer(ctx.options), { jobs, gpus, force, onEvent, tool: ctx.tool }),
      ).pipe(
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
    }),
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
