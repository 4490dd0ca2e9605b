/** `pipeline lock TARGET [--out FILE]`: pins a fully cached target's configuration, keys and artifact hashes. */
import { Effect } from "effect";
import { writeFileAtomic } from "../../cache/store.ts";
import { attempt, UsageError } from "./errors.ts";
import { defineCommand } from "./context.ts";
import { buildDag } from "../graph.ts";
import { planDag } from "../plan.ts";
import { sourcesFromFlags } from "../replay/config-sources.ts";
import { DEFAULT_LOCK_FILE, isVolatile, stableJson, type LockFile } from "../replay/lockfile.ts";

export const lock = defineCommand({
  name: "lock",
  flags: { out: { type: "string" } },
  run: (ctx) =>
    Effect.gen(function* () {
      const [target, extra] = ctx.positionals;
      if (target === undefined)
        return yield* new UsageError({ message: "lock needs a TARGET (a stage name, stage[label] or all)" });
      if (extra !== undefined) return yield* new UsageError({ message: `lock takes one TARGET, got also "${extra}"` });
      const outFile = ctx.flags.out ?? DEFAULT_LOCK_FILE;
      const { sources, config } = yield* sourcesFromFlags(ctx);
      const dag = yield* attempt(() => buildDag(ctx.definition.stages, config, target));
      const plan = yield* planDag(dag);
      for (const c of plan.corrupt) ctx.err.write(`corrupt  ${c.nodeId}: ${c.reason}; moved to quarantine\n`);
      const missing = dag.order.filter((id) => plan.entries.get(id)!.status !== "cached");
      if (missing.length > 0) {
        const message =
          `${missing.length} of ${dag.order.length} nodes of ${target} are not cached (first: ${missing[0]}); ` +
          `run \`pipeline run ${target}\` with the same options first`;
        return yield* new UsageError({ message });
      }
      const nodes: Record<string, LockFile["nodes"][string]> = {};
      for (const id of dag.order) {
        const entry = plan.entries.get(id)!;
        if (entry.status !== "cached") continue;
        const outputs = dag.nodes.get(id)!.stage.outputs;
        const artifacts = Object.entries(entry.manifest.artifacts).filter(([name]) => !isVolatile(outputs[name]));
        nodes[id] = {
          stage: entry.manifest.stage,
          key: entry.key,
          artifacts: Object.fromEntries(artifacts.map(([n, a]) => [n, a.sha256])),
        };
      }
      const lockFile: LockFile = { formatVersion: 1, tool: ctx.tool, target, configSources: sources, nodes };
      const text = stableJson(lockFile);
      yield* Effect.tryPromise({
        try: () => writeFileAtomic(outFile, text),
        catch: (e) => new UsageError({ message: `cannot write lock file ${outFile}: ${(e as Error).message}` }),
      });
      const artifactCount = Object.values(nodes).reduce((s, n) => s + Object.keys(n.artifacts).length, 0);
      ctx.err.write(`locked ${target}: ${dag.order.length} nodes, ${artifactCount} artifacts -> ${outFile}\n`);
      if (ctx.common.json) ctx.out.write(text);
      return 0;
    }),
});
