/** `pipeline push TARGET`: uploads the target's locally cached nodes to the remote cache, blobs first, entries last. */
import { Effect } from "effect";
import { Store } from "../../cache/service.ts";
import { planDag } from "../plan.ts";
import { REMOTE_FLAGS } from "./args.ts";
import { dagFromFlags, defineCommand, transferTarget } from "./context.ts";
import { formatBytes } from "./plan-view.ts";

export const push = defineCommand({
  name: "push",
  store: "write",
  flags: { ...REMOTE_FLAGS },
  remote: true,
  run: (ctx) =>
    Effect.gen(function* () {
      const store = yield* Store;
      const { target, remote } = yield* transferTarget("push", ctx.positionals, store);
      const dag = yield* dagFromFlags(ctx, target);
      const plan = yield* planDag(dag);
      const started = performance.now();
      let pushed = 0;
      let blobs = 0;
      let bytes = 0;
      const notLocal: string[] = [];
      for (const id of dag.order) {
        const entry = plan.entries.get(id)!;
        if (entry.status !== "cached") {
          notLocal.push(id);
          ctx.err.write(`missing  ${id}: not in the local cache (run it first)\n`);
          continue;
        }
        const onProgress = (message: string) => ctx.err.write(`  ...    ${id}: ${message}\n`);
        const sent = yield* store.upload(entry.manifest, { force: true, onProgress });
        if (sent === undefined) break; // the remote went down: warned about already
        pushed++;
        blobs += sent.uploaded;
        bytes += sent.bytes;
        ctx.err.write(
          `pushed   ${id}: ${sent.uploaded} blob(s), ${formatBytes(sent.bytes)}; ${sent.present} already there\n`,
        );
      }
      const seconds = ((performance.now() - started) / 1000).toFixed(2);
      ctx.err.write(
        `summary: ${pushed} of ${dag.order.length} node(s) pushed to ${remote.url} (${blobs} blob(s), ` +
          `${formatBytes(bytes)} in ${seconds} s), ${notLocal.length} not in the local cache\n`,
      );
      return pushed === dag.order.length ? 0 : 1;
    }),
});
