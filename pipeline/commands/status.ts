/** `pipeline status [TARGET]`: what is cached, what is stale and why. */
import { Effect } from "effect";
import { planCounts, planDag } from "../plan.ts";
import { dagFromFlags, defineCommand } from "./context.ts";
import { planEntryJson, planLines } from "./plan-view.ts";

export const status = defineCommand({
  name: "status",
  store: "read",
  flags: {},
  run: (ctx) =>
    Effect.gen(function* () {
      const target = ctx.positionals[0] ?? "all";
      const dag = yield* dagFromFlags(ctx, target);
      const plan = yield* planDag(dag);
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
      ctx.out.write(`${target}: ${c.cached} cached, ${c.run} stale, ${c.pending} pending (below a stale node)\n`);
      ctx.out.write(`${planLines(dag, plan).join("\n").replaceAll("  run      ", "  stale    ")}\n`);
      return 0;
    }),
});
