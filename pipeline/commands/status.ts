/**
 * `pipeline status [TARGET]`: what is cached, what is stale and why; with a remote cache, whether each node is local,
 * remote-only, or missing; and the jobs of the cache's last batch run.
 */
import { Effect } from "effect";
import { Store } from "../../cache/service.ts";
import type { JobState } from "../executor/batch.ts";
import { latestRunDir, readRunRecord } from "../executor/run-record.ts";
import { slurmScheduler } from "../executor/slurm.ts";
import { planCounts, planDag } from "../plan.ts";
import { REMOTE_FLAGS } from "./args.ts";
import { dagFromFlags, defineCommand } from "./context.ts";
import { planEntryJson, planLines } from "./plan-view.ts";

/** A job state in a word or two: `COMPLETED`, `PENDING (Resources)`, `RUNNING`. */
const stateText = (state: JobState | undefined): string => {
  if (state === undefined) return "unknown";
  if (state.phase === "ended") return state.state;
  if (state.phase === "running") return "RUNNING";
  return state.reason === undefined ? "PENDING" : `PENDING (${state.reason})`;
};

/** The jobs of the cache's last Slurm run with their states now (id, state, elapsed, node), or no lines. */
const lastRunJobs = Effect.gen(function* () {
  const store = yield* Store;
  const dir = yield* Effect.promise(() => latestRunDir(store.paths.root));
  if (dir === undefined) return [];
  const record = yield* Effect.promise(() => readRunRecord(dir).catch(() => undefined));
  if (record === undefined || record.jobs.length === 0) return [];
  const ids = record.jobs.map((j) => j.id);
  const scheduler = slurmScheduler({}, new Date(record.createdAt), false);
  const states = yield* Effect.either(scheduler.poll(record.runId, ids));
  const lines = record.jobs.map((job) => {
    const state = states._tag === "Right" ? states.right.get(job.id) : undefined;
    const elapsed = state?.elapsed ?? "";
    return `  ${job.id.padEnd(8)} ${stateText(state).padEnd(22)} ${elapsed.padStart(11)}  ${job.nodeId}`;
  });
  const unanswered = states._tag === "Left" ? ` (states unknown: ${states.left.message})` : "";
  return [`jobs of run ${record.runId} (logs in ${dir})${unanswered}:`, ...lines];
});

export const status = defineCommand({
  name: "status",
  store: "read",
  flags: { ...REMOTE_FLAGS },
  remote: true,
  run: (ctx) =>
    Effect.gen(function* () {
      const store = yield* Store;
      const target = ctx.positionals[0] ?? "all";
      const dag = yield* dagFromFlags(ctx, target);
      const plan = yield* planDag(dag, { remote: true });
      if (ctx.common.json) {
        ctx.out.write(
          `${JSON.stringify(
            dag.order.map((id) => ({ id, ...planEntryJson(plan, id) })),
            null,
            2,
          )}\n`,
        );
        return 0;
      }
      const c = planCounts(plan);
      if (store.remote === undefined) {
        ctx.out.write(`${target}: ${c.cached} cached, ${c.run} stale, ${c.pending} pending (below a stale node)\n`);
        ctx.out.write(`${planLines(dag, plan, { labels: { run: "stale" } }).join("\n")}\n`);
      } else {
        const down = store.remote.available ? "" : ` (${store.remote.url} unavailable: not consulted)`;
        ctx.out.write(
          `${target}: ${c.cached} local, ${c.remote} remote-only, ${c.run} missing, ${c.pending} pending ` +
            `(below a missing node)${down}\n`,
        );
        const labels = { cached: "local", remote: "remote", run: "missing" };
        ctx.out.write(`${planLines(dag, plan, { labels }).join("\n")}\n`);
      }
      const jobs = yield* lastRunJobs;
      if (jobs.length > 0) ctx.out.write(`${jobs.join("\n")}\n`);
      return 0;
    }),
});
