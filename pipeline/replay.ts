/**
 * Deterministic replay.
 *
 * `pipeline lock TARGET` pins a computed target in a JSON file: the configuration sources (preset, the config file's
 * contents, `--set` assignments and the definition flags that change the configuration), and per node its key and the
 * sha256 of each non-volatile artifact. `pipeline replay --check` recomputes the target from scratch in a temporary
 * cache and compares every node with the lock (`--lock FILE`) or with the artifacts in the current cache.
 *
 * Comparing with the current cache never trusts (or quarantines) what is there: the reference chain is followed through
 * the stored manifests, and each reference artifact is compared by re-hashing its file's bytes, so a cached file that
 * was changed on disk after it was committed (a flipped byte) shows up as a mismatch instead of being recomputed away.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ParseArgsConfig } from "node:util";
import { Effect, Either, Fiber, Schema } from "effect";
import { ArtifactStore, sha256File, writeFileAtomic, type Manifest } from "../cache/store.ts";
import { deepMerge, formatParseError, loadConfig } from "./config.ts";
import type { OptionValues, PipelineDefinition } from "./definition.ts";
import { executeDag, type NodeResult } from "./executor.ts";
import { buildDag, type Dag } from "./graph.ts";
import { canonicalJson } from "./hash.ts";
import { parquetColumns, parquetRowCount, readParquetBatches } from "./parquet.ts";
import { bindingOf, nodeKey, planDag, shortKey, type InputBinding } from "./plan.ts";
import { makeReporter } from "./progress.ts";
import type { OutputSpec } from "./stage.ts";
import type { Cell } from "./table.ts";

/** What a command receives from the CLI: the same shape as the Context that pipeline/cli.ts builds. */
export interface CommandContext<C, R> {
  readonly definition: PipelineDefinition<C, R>;
  /** Parsed flags. */
  readonly values: Readonly<Record<string, unknown>>;
  readonly positionals: ReadonlyArray<string>;
  /** The store at --cache-dir. */
  readonly store: ArtifactStore;
  readonly err: NodeJS.WriteStream;
  readonly out: NodeJS.WriteStream;
}

export const LOCK_OPTIONS = { out: { type: "string" } } as const satisfies ParseArgsConfig["options"];

export const REPLAY_OPTIONS = {
  check: { type: "boolean" },
  lock: { type: "string" },
  keep: { type: "boolean" },
  jobs: { type: "string", short: "j" },
  gpus: { type: "string" },
} as const satisfies ParseArgsConfig["options"];

export const DEFAULT_LOCK_FILE = "pipeline.lock.json";

/** A mistake in how lock or replay was called: one line on stderr, exit code 2. */
class ReplayUsageError extends Error {}

const Sha256 = Schema.String.pipe(Schema.pattern(/^[0-9a-f]{64}$/, { message: () => "expected 64 lowercase hex digits" }));

/** Where a configuration came from, as recorded in a lock file. */
const ConfigSourcesSchema = Schema.Struct({
  preset: Schema.NullOr(Schema.String),
  /** The contents of the --config file, inlined so the lock does not depend on the file. */
  config: Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  set: Schema.Array(Schema.String),
  /** Definition flags that change the configuration (e.g. --dataset); environment flags are left out. */
  options: Schema.Record({ key: Schema.String, value: Schema.String }),
});
export type ConfigSourcesJson = typeof ConfigSourcesSchema.Type;

const LockSchema = Schema.Struct({
  formatVersion: Schema.Literal(1),
  tool: Schema.Struct({ name: Schema.String, version: Schema.String }),
  target: Schema.String,
  configSources: ConfigSourcesSchema,
  nodes: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({ stage: Schema.String, key: Sha256, artifacts: Schema.Record({ key: Schema.String, value: Sha256 }) }),
  }),
});
export type LockFile = typeof LockSchema.Type;

type Json = Record<string, unknown>;

const isPlainObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

const sortKeys = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(sortKeys)
    : isPlainObject(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]))
      : v;

/** JSON with object keys sorted, 2-space indentation and a trailing newline: equal values give equal bytes. */
export const stableJson = (value: unknown): string => `${JSON.stringify(sortKeys(value), null, 2)}\n`;

const toolVersion = (): string => {
  try {
    return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
};

/** The definition's flags as the stages' layer and `configure` see them (flag, else environment variable). */
const optionValues = <C, R>(definition: PipelineDefinition<C, R>, values: Readonly<Record<string, unknown>>): OptionValues =>
  Object.fromEntries(
    definition.options.map((o) => {
      const flag = values[o.name];
      return [o.name, flag === true ? "true" : typeof flag === "string" ? flag : o.env ? process.env[o.env] : undefined];
    }),
  );

/** Volatile artifacts (wall times) differ between identical runs: they are neither locked nor compared. */
const isVolatile = (spec: OutputSpec | undefined): boolean => spec?.kind === "table" && spec.volatile === true;

const parsePositiveInt = (raw: unknown, flag: string, fallback: number): number => {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new ReplayUsageError(`${flag} expects a positive integer, got "${raw}"`);
  return n;
};

/** Runs a command body; its own usage mistakes become one line and exit code 2 (config and graph errors go to the CLI). */
const guarded = async <C, R>(ctx: CommandContext<C, R>, body: () => Promise<number>): Promise<number> => {
  try {
    return await body();
  } catch (e) {
    if (!(e instanceof ReplayUsageError)) throw e;
    ctx.err.write(`pipeline: ${e.message}\n`);
    return 2;
  }
};

/**
 * The definition options that change the configuration: those whose value alone makes `configure` return something
 * else than without it, on the configuration they apply to. Environment flags (data and cache directories, backend)
 * change nothing there and are left out of a lock.
 */
const configOptions = <C, R>(definition: PipelineDefinition<C, R>, base: Json, options: OptionValues): Record<string, string> => {
  const without = canonicalJson(definition.configure(base, {}));
  const affecting: Record<string, string> = {};
  for (const [name, value] of Object.entries(options)) {
    if (value !== undefined && canonicalJson(definition.configure(base, { [name]: value })) !== without) affecting[name] = value;
  }
  return affecting;
};

/** Defaults <- preset <- config contents: what `configure` is applied to. */
const baseConfig = <C, R>(definition: PipelineDefinition<C, R>, preset: string | null, config: Json | null): Json => {
  let base: Json = { ...definition.defaultConfig };
  const presetValues = preset === null ? undefined : definition.presets[preset];
  if (presetValues !== undefined) base = deepMerge(base, presetValues as Json);
  return config === null ? base : deepMerge(base, config);
};

/** Loads the configuration from recorded sources; an inline config is written to `scratch` for loadConfig to read. */
const configFromSources = async <C, R>(
  definition: PipelineDefinition<C, R>,
  sources: ConfigSourcesJson,
  options: OptionValues,
  scratch: string,
): Promise<C> => {
  let configFile: string | undefined;
  if (sources.config !== null) {
    configFile = join(scratch, "locked-config.json");
    await writeFile(configFile, JSON.stringify(sources.config));
  }
  return loadConfig(definition, {
    preset: sources.preset ?? undefined,
    configFile,
    assignments: sources.set,
    options,
  }).config;
};

/** A --config file's contents, inlined into a lock; every problem is one line. */
const readJsonObject = (file: string): Json => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ReplayUsageError(`cannot read config file ${file} as JSON: ${(e as Error).message.split("\n")[0]}`);
  }
  if (!isPlainObject(parsed)) throw new ReplayUsageError(`config file ${file} must hold a JSON object`);
  return parsed;
};

/** The configuration sources the command line gives (the config file read and inlined); validates them first. */
const sourcesFromFlags = <C, R>(ctx: CommandContext<C, R>): { sources: ConfigSourcesJson; config: C; options: OptionValues } => {
  const options = optionValues(ctx.definition, ctx.values);
  const configFile = ctx.values.config as string | undefined;
  const assignments = (ctx.values.set as string[] | undefined) ?? [];
  const preset = (ctx.values.preset as string | undefined) ?? ctx.definition.defaultPreset ?? null;
  const { config } = loadConfig(ctx.definition, { preset: preset ?? undefined, configFile, assignments, options });
  const inline = configFile === undefined ? null : readJsonObject(configFile);
  return {
    sources: { preset, config: inline, set: assignments, options: configOptions(ctx.definition, baseConfig(ctx.definition, preset, inline), options) },
    config,
    options,
  };
};

/** `pipeline lock TARGET [--out FILE]`: pins a fully cached target's configuration, keys and artifact hashes. */
export const cmdLock = async <C, R>(ctx: CommandContext<C, R>): Promise<number> =>
  guarded(ctx, async () => {
    const [target, extra] = ctx.positionals;
    if (target === undefined) throw new ReplayUsageError("lock needs a TARGET (a stage name, stage[label] or all)");
    if (extra !== undefined) throw new ReplayUsageError(`lock takes one TARGET, got also "${extra}"`);
    const outFile = (ctx.values.out as string | undefined) ?? DEFAULT_LOCK_FILE;
    const { sources, config } = sourcesFromFlags(ctx);
    const dag = buildDag(ctx.definition.stages, config, target);
    const plan = await planDag(dag, ctx.store);
    for (const c of plan.corrupt) ctx.err.write(`corrupt  ${c.nodeId}: ${c.reason}; moved to quarantine\n`);
    const missing = dag.order.filter((id) => plan.entries.get(id)!.status !== "cached");
    if (missing.length > 0) {
      throw new ReplayUsageError(
        `${missing.length} of ${dag.order.length} nodes of ${target} are not cached (first: ${missing[0]}); run \`pipeline run ${target}\` with the same options first`,
      );
    }
    const nodes: Record<string, LockFile["nodes"][string]> = {};
    for (const id of dag.order) {
      const entry = plan.entries.get(id)!;
      if (entry.status !== "cached") continue;
      const outputs = dag.nodes.get(id)!.stage.outputs;
      const artifacts = Object.entries(entry.manifest.artifacts).filter(([name]) => !isVolatile(outputs[name]));
      nodes[id] = { stage: entry.manifest.stage, key: entry.key, artifacts: Object.fromEntries(artifacts.map(([n, a]) => [n, a.sha256])) };
    }
    const lock: LockFile = {
      formatVersion: 1,
      tool: { name: ctx.definition.name, version: toolVersion() },
      target,
      configSources: sources,
      nodes,
    };
    const text = stableJson(lock);
    try {
      await writeFileAtomic(outFile, text);
    } catch (e) {
      throw new ReplayUsageError(`cannot write lock file ${outFile}: ${(e as Error).message}`);
    }
    const artifactCount = Object.values(nodes).reduce((s, n) => s + Object.keys(n.artifacts).length, 0);
    ctx.err.write(`locked ${target}: ${dag.order.length} nodes, ${artifactCount} artifacts -> ${outFile}\n`);
    if (ctx.values.json === true) ctx.out.write(text);
    return 0;
  });

/** Reads and validates a lock file; every problem is one line. */
export const readLockFile = async (file: string): Promise<LockFile> => {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    throw new ReplayUsageError(`cannot read lock file ${file}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ReplayUsageError(`lock file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  const decoded = Schema.decodeUnknownEither(LockSchema)(parsed);
  if (Either.isLeft(decoded)) throw new ReplayUsageError(`malformed lock file ${file}: ${formatParseError(decoded.left)}`);
  return decoded.right;
};

/** One artifact as the reference knows it. */
interface ReferenceArtifact {
  /** The sha256 the replayed artifact must have. */
  readonly sha256: string;
  /** The reference file itself (current cache only), to diff tables against. */
  readonly path?: string;
  /** The sha256 its manifest recorded, when the file's bytes no longer have it (a corrupt cache file). */
  readonly recordedSha256?: string;
}

/** The sha256 of a reference file that does not exist. */
const MISSING = "missing";

interface ReferenceNode {
  readonly key: string;
  readonly artifacts: Readonly<Record<string, ReferenceArtifact>>;
}

const lockReference = (lock: LockFile): ReadonlyMap<string, ReferenceNode> =>
  new Map(
    Object.entries(lock.nodes).map(([id, n]) => [
      id,
      { key: n.key, artifacts: Object.fromEntries(Object.entries(n.artifacts).map(([name, sha256]) => [name, { sha256 }])) },
    ]),
  );

/**
 * The current cache's artifacts for the DAG, found like the planner finds them (key from the upstream manifests'
 * recorded hashes) but without verifying or quarantining anything; each artifact's sha256 is that of its file's bytes now.
 */
const cacheReference = async <C, R>(dag: Dag<C, R>, store: ArtifactStore): Promise<ReadonlyMap<string, ReferenceNode>> => {
  const manifests = new Map<string, Manifest>();
  const reference = new Map<string, ReferenceNode>();
  for (const id of dag.order) {
    const node = dag.nodes.get(id)!;
    const inputs: Record<string, InputBinding> = {};
    let complete = true;
    for (const [input, depId] of Object.entries(node.deps)) {
      const upstream = manifests.get(depId);
      if (upstream === undefined) complete = false;
      else inputs[input] = bindingOf(upstream, dag.nodes.get(depId)!.stage.outputs);
    }
    if (!complete) continue;
    const key = nodeKey(node, inputs);
    const manifest = await store.manifest(key);
    if (manifest === undefined) continue;
    manifests.set(id, manifest);
    const artifacts: Record<string, ReferenceArtifact> = {};
    for (const [name, entry] of Object.entries(manifest.artifacts)) {
      if (isVolatile(node.stage.outputs[name])) continue;
      const path = join(store.objectDir(key), entry.file);
      const actual = await sha256File(path).catch(() => MISSING);
      artifacts[name] = actual === entry.sha256 ? { sha256: actual, path } : { sha256: actual, path, recordedSha256: entry.sha256 };
    }
    reference.set(id, { key, artifacts });
  }
  return reference;
};

export type ReplayStatus = "match" | "MISMATCH" | "no reference" | "failed";

export interface NodeComparison {
  readonly id: string;
  readonly status: ReplayStatus;
  /** The replayed key (absent when the node could not run). */
  readonly key: string | null;
  readonly referenceKey: string | null;
  /** One entry per difference; `artifact` is null for differences of the node as a whole. */
  readonly differences: ReadonlyArray<{ readonly artifact: string | null; readonly detail: string }>;
}

const comparedNames = (outputs: Readonly<Record<string, OutputSpec>>, a: Iterable<string>, b: Iterable<string>) =>
  [...new Set([...a, ...b])].filter((name) => !isVolatile(outputs[name])).sort();

/** Compares one replayed node with its reference. */
const compareNode = async <C, R>(
  dag: Dag<C, R>,
  result: NodeResult,
  reference: ReferenceNode | undefined,
  referenceName: "lock" | "cache",
  mismatched: ReadonlySet<string>,
): Promise<NodeComparison> => {
  const node = dag.nodes.get(result.id)!;
  const base = { id: result.id, key: result.key ?? null, referenceKey: reference?.key ?? null };
  if (result.status === "failed") return { ...base, status: "failed", differences: [{ artifact: null, detail: result.error ?? "failed" }] };
  if (result.status === "skipped") return { ...base, status: "failed", differences: [{ artifact: null, detail: `not run: ${result.reason}` }] };
  if (reference === undefined) return { ...base, status: "no reference", differences: [] };
  const differences: Array<{ artifact: string | null; detail: string }> = [];
  if (reference.key !== result.key) {
    const upstreamDiffers = Object.values(node.deps).some((dep) => mismatched.has(dep));
    differences.push({
      artifact: null,
      detail: upstreamDiffers ? "key differs: an upstream artifact differs" : "key differs: configuration or code changed",
    });
  }
  const replayed = result.manifest!.artifacts;
  for (const name of comparedNames(node.stage.outputs, Object.keys(replayed), Object.keys(reference.artifacts))) {
    const mine = replayed[name];
    const theirs = reference.artifacts[name];
    if (mine === undefined || theirs === undefined) {
      differences.push({ artifact: name, detail: `present only in the ${mine === undefined ? referenceName : "replay"}` });
      continue;
    }
    if (theirs.sha256 === MISSING) {
      differences.push({ artifact: name, detail: "the cached file is missing" });
      continue;
    }
    if (theirs.recordedSha256 !== undefined) {
      const detail = `the cached file no longer has its manifest's sha256 ${shortKey(theirs.recordedSha256)} (changed on disk)`;
      differences.push({ artifact: name, detail });
    }
    if (mine.sha256 === theirs.sha256) continue;
    const replayPath = join(result.dir!, mine.file);
    let detail = `bytes differ (sha256 ${referenceName} ${shortKey(theirs.sha256)} vs replay ${shortKey(mine.sha256)})`;
    if (theirs.path !== undefined && mine.kind === "table") {
      try {
        detail = (await diffParquet(theirs.path, replayPath, [referenceName, "replay"])) ?? "bytes differ, rows and values identical";
      } catch (e) {
        detail = `bytes differ; the cached table is unreadable (${(e as Error).message.split("\n")[0]})`;
      }
    }
    differences.push({ artifact: name, detail });
  }
  return { ...base, status: differences.length === 0 ? "match" : "MISMATCH", differences };
};

/** Runs the executor, stopping it on Ctrl-C; undefined when interrupted. */
const execute = async <C, R>(
  ctx: CommandContext<C, R>,
  dag: Dag<C, R>,
  store: ArtifactStore,
  options: OptionValues,
): Promise<ReadonlyArray<NodeResult> | undefined> => {
  const reporter = makeReporter(ctx.err);
  const fiber = Effect.runFork(
    executeDag(dag, store, ctx.definition.layer(options), {
      jobs: parsePositiveInt(ctx.values.jobs, "--jobs", 2),
      gpus: parsePositiveInt(ctx.values.gpus, "--gpus", 1),
      onEvent: reporter.onEvent,
      tool: { name: ctx.definition.name, version: toolVersion() },
    }),
  );
  const onSignal = () => void Effect.runFork(Fiber.interrupt(fiber));
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const exit = await Effect.runPromise(Fiber.await(fiber));
    return exit._tag === "Success" ? exit.value : undefined;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    reporter.close();
  }
};

/** The configuration of a lock, with what the command line overrides (preset, config, --set, config-changing flags). */
const lockedConfig = async <C, R>(ctx: CommandContext<C, R>, lock: LockFile, scratch: string) => {
  const cmdline = optionValues(ctx.definition, ctx.values);
  const locked = lock.configSources;
  const explicitFlags = Object.fromEntries(
    Object.entries(cmdline).filter(([name, v]) => v !== undefined && ctx.values[name] !== undefined),
  ) as Record<string, string>;
  const configOverride = ctx.values.config === undefined ? null : readJsonObject(ctx.values.config as string);
  const sources: ConfigSourcesJson = {
    preset: (ctx.values.preset as string | undefined) ?? locked.preset,
    config: configOverride ?? locked.config,
    set: [...locked.set, ...((ctx.values.set as string[] | undefined) ?? [])],
    options: { ...locked.options, ...configOptions(ctx.definition, baseConfig(ctx.definition, locked.preset, locked.config), explicitFlags) },
  };
  const overrides = [
    ...(ctx.values.preset === undefined ? [] : [`--preset ${ctx.values.preset as string}`]),
    ...(ctx.values.config === undefined ? [] : [`--config ${ctx.values.config as string}`]),
    ...((ctx.values.set as string[] | undefined) ?? []).map((s) => `--set ${s}`),
    ...Object.entries(sources.options)
      .filter(([name, v]) => locked.options[name] !== v)
      .map(([name, v]) => `--${name} ${v}`),
  ];
  const options: OptionValues = { ...cmdline, ...sources.options };
  return { config: await configFromSources(ctx.definition, sources, options, scratch), options, overrides };
};

/**
 * `pipeline replay [TARGET] --check [--lock FILE] [--keep]`: recomputes TARGET in a fresh temporary cache and compares
 * each node with the lock or with the current cache. Exit code 0 only when every node matches.
 */
export const cmdReplay = async <C, R>(ctx: CommandContext<C, R>): Promise<number> =>
  guarded(ctx, async () => {
    if (ctx.values.check !== true) {
      throw new ReplayUsageError("replay needs --check (recompute in a temporary cache and compare with a lock or the cache)");
    }
    if (ctx.positionals.length > 1) throw new ReplayUsageError(`replay takes at most one TARGET, got also "${ctx.positionals[1]}"`);
    const lockFile = ctx.values.lock as string | undefined;
    const lock = lockFile === undefined ? undefined : await readLockFile(lockFile);
    const target = ctx.positionals[0] ?? lock?.target;
    if (target === undefined) throw new ReplayUsageError("replay needs a TARGET, or --lock FILE to take it from");
    parsePositiveInt(ctx.values.jobs, "--jobs", 2);
    parsePositiveInt(ctx.values.gpus, "--gpus", 1);
    const keep = ctx.values.keep === true;
    const scratch = await mkdtemp(join(tmpdir(), "pipeline-replay-"));
    try {
      let config: C;
      let options: OptionValues;
      if (lock === undefined) {
        ({ config, options } = sourcesFromFlags(ctx));
      } else {
        const locked = await lockedConfig(ctx, lock, scratch);
        ({ config, options } = locked);
        if (lock.tool.version !== toolVersion()) ctx.err.write(`note: the lock was made by ${lock.tool.name} ${lock.tool.version}, this is ${toolVersion()}\n`);
        if (locked.overrides.length > 0) ctx.err.write(`note: the command line overrides the lock's configuration: ${locked.overrides.join(" ")}\n`);
      }
      const dag = buildDag(ctx.definition.stages, config, target);
      const store = await ArtifactStore.open(join(scratch, "cache"));
      ctx.err.write(`replay ${target}: recomputing ${dag.order.length} nodes in ${store.paths.root}\n`);
      const results = await execute(ctx, dag, store, options);
      if (results === undefined) {
        ctx.err.write("interrupted: nothing was compared\n");
        return 130;
      }
      const referenceName = lock === undefined ? "cache" : "lock";
      const reference = lock === undefined ? await cacheReference(dag, ctx.store) : lockReference(lock);
      const comparisons: NodeComparison[] = [];
      const mismatched = new Set<string>();
      for (const result of results) {
        const c = await compareNode(dag, result, reference.get(result.id), referenceName, mismatched);
        if (c.status !== "match") mismatched.add(c.id);
        comparisons.push(c);
      }
      if (lock !== undefined && target === lock.target) {
        for (const [id, n] of Object.entries(lock.nodes)) {
          if (dag.nodes.has(id)) continue;
          comparisons.push({
            id,
            status: "MISMATCH",
            key: null,
            referenceKey: n.key,
            differences: [{ artifact: null, detail: "in the lock but not in the replayed graph (configuration or code changed)" }],
          });
        }
      }
      const ok = comparisons.every((c) => c.status === "match");
      const count = (s: ReplayStatus) => comparisons.filter((c) => c.status === s).length;
      const summary = `replay ${target} against the ${referenceName === "lock" ? `lock ${lockFile}` : `cache ${ctx.store.paths.root}`}: ${count("match")} match, ${count("MISMATCH")} mismatch, ${count("no reference")} no reference, ${count("failed")} failed`;
      if (ctx.values.json === true) {
        const json = { target, reference: referenceName, lockFile: lockFile ?? null, replayCache: keep ? store.paths.root : null, ok, nodes: comparisons };
        ctx.out.write(`${JSON.stringify(json, null, 2)}\n`);
        ctx.err.write(`${summary}\n`);
      } else {
        ctx.out.write(`${renderComparisons(comparisons, referenceName)}\n${summary}\n`);
      }
      if (keep) ctx.err.write(`kept the replay cache at ${store.paths.root}\n`);
      return ok ? 0 : 1;
    } finally {
      if (!keep) await rm(scratch, { recursive: true, force: true });
    }
  });

/** The per-node table: status, node id, key, then one line per difference. */
export const renderComparisons = (comparisons: ReadonlyArray<NodeComparison>, referenceName: string): string => {
  const width = Math.min(48, Math.max(4, ...comparisons.map((c) => c.id.length)));
  const lines = [`  ${"status".padEnd(12)} ${"node".padEnd(width)}  details (${referenceName} vs replay)`];
  for (const c of comparisons) {
    const [first, ...rest] = c.differences.map((d) => (d.artifact === null ? d.detail : `${d.artifact}: ${d.detail}`));
    lines.push(`  ${c.status.padEnd(12)} ${c.id.padEnd(width)}  ${first ?? (c.key === null ? "" : shortKey(c.key))}`.trimEnd());
    for (const line of rest) lines.push(`  ${"".padEnd(12)} ${"".padEnd(width)}  ${line}`);
  }
  return lines.join("\n");
};

/** Every value of one column, in row order (one column at a time keeps memory to a column, not a table). */
const columnValues = async (path: string, column: string): Promise<Cell[]> => {
  const values: Cell[] = [];
  await readParquetBatches(path, async (rows) => {
    for (const row of rows) values.push(row[column]);
  });
  return values;
};

const sameCell = (a: Cell, b: Cell): boolean => {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(Buffer.from(b));
  if ((a ?? null) === null || (b ?? null) === null) return (a ?? null) === (b ?? null);
  return Object.is(a, b);
};

const showCell = (v: Cell): string => {
  if (v === null || v === undefined) return "null";
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return String(v);
};

const showPair = (a: Cell, b: Cell, labels: readonly [string, string]): string => {
  const [la, lb] = labels.map((l) => (l === "" ? "" : `${l} `));
  if (a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length) {
    const at = a.findIndex((x, i) => x !== b[i]);
    return `${la}${showCell(a)} vs ${lb}${showCell(b)}, first at byte ${at}: ${a[at]} vs ${b[at]}`;
  }
  return `${la}${showCell(a)} vs ${lb}${showCell(b)}`;
};

/**
 * What differs between two Parquet tables, compared by value: the schema, then the row count, then column by column
 * in schema order the first row whose values differ. Undefined when every value is identical (the bytes may still
 * differ, e.g. in metadata). `labels` name the two sides in the message.
 */
export const diffParquet = async (a: string, b: string, labels: readonly [string, string] = ["", ""]): Promise<string | undefined> => {
  const [columnsA, columnsB] = [await parquetColumns(a), await parquetColumns(b)];
  if (canonicalJson(columnsA) !== canonicalJson(columnsB)) {
    return `schema differs (${columnsA.join(", ")} vs ${columnsB.join(", ")})`;
  }
  const [rowsA, rowsB] = [await parquetRowCount(a), await parquetRowCount(b)];
  if (rowsA !== rowsB) return `row count ${rowsA} vs ${rowsB}`;
  for (const column of columnsA.map((c) => c.split(" ")[0]!)) {
    const [valuesA, valuesB] = [await columnValues(a, column), await columnValues(b, column)];
    const rows = Math.max(valuesA.length, valuesB.length);
    for (let row = 0; row < rows; row++) {
      if (row >= valuesA.length || row >= valuesB.length) return `row count ${valuesA.length} vs ${valuesB.length} (read)`;
      if (!sameCell(valuesA[row], valuesB[row])) {
        return `column ${column} differs first at row ${row} (${showPair(valuesA[row], valuesB[row], labels)})`;
      }
    }
  }
  return undefined;
};
