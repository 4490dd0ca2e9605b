/**
 * `pipeline lock TARGET [--out FILE] [--force] [--check]`: pins a fully cached target's configuration, keys and
 * artifact hashes; with --check, only says whether the lock file still pins what the cache and configuration give.
 * It refuses to replace a lock of another target or configuration (e.g. the one CI replays) unless --force is given.
 */
import { existsSync } from "node:fs";
import { Effect } from "effect";
import { writeFileAtomic } from "../../cache/store.ts";
import { attempt, UsageError } from "./errors.ts";
import type { FlagSpecs } from "./args.ts";
import { defineCommand, type CommandContext } from "./context.ts";
import { buildDag } from "../graph.ts";
import { diffKeys, planDag, shortKey } from "../plan.ts";
import { sourcesFromFlags } from "../replay/config-sources.ts";
import { canonicalJson } from "../hash.ts";
import {
  DEFAULT_LOCK_FILE,
  isVolatile,
  readLockFile,
  stableJson,
  type ConfigSourcesJson,
  type LockFile,
} from "../replay/lockfile.ts";

/** The longest inlined --config contents shown when the file's name is unknown (a lock keeps contents, not names). */
const MAX_CONFIG_SHOWN = 60;

/**
 * A lock's target and configuration as the flags that give it, e.g. `target all with --preset smoke --set power=3`.
 * `configFile` names the --config contents when they are those of the file given on this command line.
 */
const describeLock = (target: string, sources: ConfigSourcesJson, configFile: string | undefined): string => {
  const inline = sources.config === null ? "" : canonicalJson(sources.config);
  const config =
    sources.config === null
      ? []
      : [configFile ?? (inline.length > MAX_CONFIG_SHOWN ? `${inline.slice(0, MAX_CONFIG_SHOWN)}…` : inline)];
  const flags = [
    ...(sources.preset === null ? [] : [`--preset ${sources.preset}`]),
    ...config.map((c) => `--config ${c}`),
    ...sources.set.map((s) => `--set ${s}`),
    ...Object.entries(sources.options).map(([name, value]) => `--${name} ${value}`),
  ];
  return `target ${target} with ${flags.length === 0 ? "the default configuration" : flags.join(" ")}`;
};

const REPLACE_HINT = "use --out FILE for another lock, or --force to replace it";

/**
 * Fails when `outFile` holds something other than a lock of the same target and configuration: rewriting a lock after
 * recomputing is fine, replacing another one (or an unreadable file) must be asked for with --force.
 */
const guardExistingLock = (
  outFile: string,
  target: string,
  sources: ConfigSourcesJson,
  configFile: string | undefined,
): Effect.Effect<void, UsageError> =>
  Effect.gen(function* () {
    if (!existsSync(outFile)) return;
    const existing = yield* readLockFile(outFile).pipe(
      Effect.mapError((e) => new UsageError({ message: `${e.message}; ${REPLACE_HINT}` })),
    );
    const pinned = { target: existing.target, sources: existing.configSources };
    if (canonicalJson(pinned) === canonicalJson({ target, sources })) return;
    const sameConfigFile =
      configFile !== undefined && canonicalJson(existing.configSources.config) === canonicalJson(sources.config);
    const message =
      `${outFile} pins ${describeLock(existing.target, existing.configSources, sameConfigFile ? configFile : undefined)}` +
      `; this lock is for ${describeLock(target, sources, configFile)}: ${REPLACE_HINT}`;
    return yield* new UsageError({ message });
  });

/**
 * `lock --check`: compares the lock `lock` would write with `outFile`, writing nothing; one line per difference
 * (target, configuration, a node added, removed or with another key or artifact). Exit code 0 when equal, else 1.
 */
const checkLock = <C, R, S extends FlagSpecs>(
  ctx: CommandContext<C, R, S>,
  outFile: string,
  fresh: LockFile,
): Effect.Effect<number, UsageError> =>
  Effect.gen(function* () {
    const pinned = yield* readLockFile(outFile);
    const differences = [
      ...(pinned.target === fresh.target ? [] : [`target ${pinned.target} -> ${fresh.target}`]),
      ...diffKeys(pinned.configSources, fresh.configSources).map((d) => `configuration ${d}`),
    ];
    for (const id of [...new Set([...Object.keys(pinned.nodes), ...Object.keys(fresh.nodes)])].sort()) {
      const [was, now] = [pinned.nodes[id], fresh.nodes[id]];
      if (was === undefined) differences.push(`${id}: not in the lock`);
      else if (now === undefined) differences.push(`${id}: in the lock only`);
      else if (was.key !== now.key) differences.push(`${id}: key ${shortKey(was.key)} -> ${shortKey(now.key)}`);
      else if (canonicalJson(was.artifacts) !== canonicalJson(now.artifacts))
        differences.push(`${id}: artifacts' sha256 differ`);
    }
    if (differences.length === 0) {
      ctx.err.write(`${outFile} is up to date (${fresh.target}, ${Object.keys(fresh.nodes).length} nodes)\n`);
      return 0;
    }
    ctx.out.write(`${differences.join("\n")}\n`);
    ctx.err.write(`${outFile} differs from the cache and configuration in ${differences.length} place(s)\n`);
    return 1;
  });

export const lock = defineCommand({
  name: "lock",
  store: "read",
  flags: { out: { type: "string" }, force: { type: "boolean" }, check: { type: "boolean" } },
  run: (ctx) =>
    Effect.gen(function* () {
      const [target, extra] = ctx.positionals;
      if (target === undefined)
        return yield* new UsageError({ message: "lock needs a TARGET (a stage name, stage[label] or all)" });
      if (extra !== undefined) return yield* new UsageError({ message: `lock takes one TARGET, got also "${extra}"` });
      const outFile = ctx.flags.out ?? DEFAULT_LOCK_FILE;
      const { sources, config } = yield* sourcesFromFlags(ctx);
      const dag = yield* attempt(() => buildDag(ctx.definition.stages, config, target));
      if (!ctx.flags.force && !ctx.flags.check)
        yield* guardExistingLock(outFile, target, sources, ctx.configuration.configFile);
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
      if (ctx.flags.check) return yield* checkLock(ctx, outFile, lockFile);
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
