/** `pipeline gc [--dry-run]`: removes artifacts that no node of the current configuration reaches. */
import { Effect } from "effect";
import { Store } from "../../cache/service.ts";
import { planDag, shortKey } from "../plan.ts";
import { dagFromFlags, defineCommand } from "./context.ts";
import { formatBytes } from "./plan-view.ts";

export const gc = defineCommand({
  name: "gc",
  flags: { "dry-run": { type: "boolean" } },
  run: (ctx) =>
    Effect.gen(function* () {
      const store = yield* Store;
      const dag = yield* dagFromFlags(ctx, "all");
      const plan = yield* planDag(dag);
      const keep = new Set<string>();
      for (const e of plan.entries.values()) if (e.status === "cached") keep.add(e.key);
      const dryRun = ctx.flags["dry-run"];
      const { removed, freedBytes } = yield* store.gc(keep, { dryRun });
      const verb = dryRun ? "would remove" : "removed";
      const kept = `kept ${keep.size} reachable from the current configuration`;
      ctx.out.write(`${verb} ${removed.length} artifact(s), ${formatBytes(freedBytes)}; ${kept}\n`);
      for (const k of removed) ctx.out.write(`  ${shortKey(k)}\n`);
      return 0;
    }),
});
