/**
 * `pipeline status [TARGET]`: what is cached, what is stale and why; with a remote cache, whether each node is local,
 * remote-only, or missing.
 */
import { Effect } from "effect";
import { Store } from "../../cache/service.ts";
import { planCounts, planDag } from "../plan.ts";
import { REMOTE_FLAGS } from "./args.ts";
import { dagFromFlags, defineCommand } from "./context.ts";
import { planEntryJson, planLines } from "./plan-view.ts";

export const status = defineCommand({
  name: "status",
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
        ctx.out.write(`${planLines(dag, plan, { run: "stale" }).join("\n")}\n`);
        return 0;
      }
      const down = store.remote.available ? "" : ` (${store.remote.url} unavailable: not consulted)`;
      ctx.out.write(
        `${target}: ${c.cached} local, ${c.remote} remote-only, ${c.run} missing, ${c.pending} pending ` +
          `(below a missing node)${down}\n`,
      );
      ctx.out.write(`${planLines(dag, plan, { cached: "local", remote: "remote", run: "missing" }).join("\n")}\n`);
      return 0;
    }),
});
