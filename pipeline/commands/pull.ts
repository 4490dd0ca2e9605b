/**
 * `pipeline pull TARGET`: fetches the target's nodes that the local cache lacks from the remote cache, each blob
 * verified before it enters the local CAS. Nothing is computed: a node the remote lacks is reported missing.
 */
import { Effect } from "effect";
import { Store } from "../../cache/service.ts";
import { planCounts, planDag } from "../plan.ts";
import { REMOTE_FLAGS } from "./args.ts";
import { dagFromFlags, defineCommand, transferTarget } from "./context.ts";
import { formatBytes } from "./plan-view.ts";

export const pull = defineCommand({
  name: "pull",
  store: "write",
  flags: { ...REMOTE_FLAGS },
  remote: true,
  run: (ctx) =>
    Effect.gen(function* () {
      const store = yield* Store;
      const { target, remote } = yield* transferTarget("pull", ctx.positionals, store);
      const started = performance.now();
      const dag = yield* dagFromFlags(ctx, target);
      const plan = yield* planDag(dag, { remote: true });
      const c = planCounts(plan);
      ctx.err.write(
        `pull ${target} from ${remote.url}: ${dag.order.length} nodes, ${c.cached} local, ${c.remote} in the remote, ` +
          `${c.run + c.pending} missing\n`,
      );
      let fetched = 0;
      let bytes = 0;
      let failed = 0;
      yield* Effect.forEach(
        dag.order,
        (id) =>
          Effect.gen(function* () {
            const entry = plan.entries.get(id)!;
            if (entry.status === "cached") return;
            if (entry.status !== "remote") {
              ctx.err.write(`missing  ${id}: ${entry.reason}; not in the remote cache either\n`);
              return;
            }
            const onProgress = (message: string) => ctx.err.write(`  ...    ${id}: ${message}\n`);
            const result = yield* store.fetch(entry.key, onProgress);
            if (result.status === "miss") {
              failed++;
              ctx.err.write(`FAILED   ${id}: ${result.reason ?? "the remote no longer has it"}\n`);
              return;
            }
            fetched++;
            bytes += result.bytes;
            ctx.err.write(`remote hit ${id}: ${result.blobs} blob(s), ${formatBytes(result.bytes)}\n`);
          }),
        { concurrency: 4, discard: true },
      );
      const seconds = ((performance.now() - started) / 1000).toFixed(2);
      const missing = c.run + c.pending;
      ctx.err.write(
        `summary: ${fetched} fetched (${formatBytes(bytes)}), ${c.cached} already local, ${failed} failed, ` +
          `${missing} missing in ${seconds} s\n`,
      );
      return failed + missing === 0 && remote.available ? 0 : 1;
    }),
});
