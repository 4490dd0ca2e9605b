/**
 * The `pipeline` command line: run, status, dag, inspect, gc, plus the commands a pipeline definition adds.
 * User mistakes end with one line on stderr and exit code 2; failed nodes with exit code 1.
 */
import { readFileSync } from "node:fs";
import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { Effect, Fiber } from "effect";
import { ArtifactStore, type Manifest } from "../cache/store.ts";
import { ConfigError, loadConfig } from "./config.ts";
import type { PipelineDefinition } from "./definition.ts";
import { executeDag, type NodeResult } from "./executor.ts";
import { buildDag, GraphError, type Dag } from "./graph.ts";
import { readParquetBatches } from "./parquet.ts";
import { planCounts, planDag, shortKey, type Plan, type PlanEntry } from "./plan.ts";
import { finishLine, makeReporter } from "./progress.ts";
import { cmdLock, cmdReplay, LOCK_OPTIONS, REPLAY_OPTIONS } from "./replay.ts";
import { formatRows, querySql, SqlError, viewNames } from "./sql.ts";

/** A mistake in how the command was called: one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

const toolVersion = (): string => {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    return pkg.version;
  } catch {
    return "unknown";
  }
};

const COMMON = {
  "cache-dir": { type: "string" },
  config: { type: "string" },
  preset: { type: "string" },
  set: { type: "string", multiple: true },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

const HELP = (name: string, extra: string) => `usage: ${name} <command> [options]

commands:
  run TARGET        compute TARGET (a stage name, stage[label], or all), reusing cached artifacts
                    [--dry-run] [--force STAGE]... [--jobs N] [--gpus N] [--json] [--out DIR: copy the target's artifacts]
  status [TARGET]   list what is cached and what is stale for TARGET (default all)
  dag TARGET        print the graph [--format text|mermaid|dot]
  inspect REF       show an artifact: REF is a key (prefix), a node id like preprocess[mnist], or STAGE:label
                    [--rows N] [--json] [--list]
  inspect REF... --sql QUERY
                    run SQL over the REFs' tables, each a view named after its artifact (the names are
                    listed on stderr) [--format table|csv|json] [--rows N]
  gc                remove artifacts that no node of the current configuration reaches [--dry-run]
  lock TARGET       pin TARGET's configuration, node keys and artifact sha256s in a JSON lock file
                    (every node must be cached) [--out FILE, default pipeline.lock.json] [--json]
  replay [TARGET] --check
                    recompute TARGET from scratch in a temporary cache and compare every node with
                    --lock FILE or with the current cache [--keep] [--jobs N] [--gpus N] [--json]; exit 1 on any difference
${extra}
common options:
  --cache-dir DIR   artifact store (env PIPELINE_CACHE_DIR, default ./cache)
  --config FILE     JSON configuration merged over the defaults
  --preset NAME     a named configuration
  --set key=value   override one configuration value (repeatable; value parsed as JSON when it can be)
  --json            machine-readable output on stdout
`;

interface Context<C, R> {
  readonly definition: PipelineDefinition<C, R>;
  readonly values: Record<string, unknown>;
  readonly positionals: string[];
  readonly store: ArtifactStore;
  readonly err: NodeJS.WriteStream;
  readonly out: NodeJS.WriteStream;
}

const optionValues = <C, R>(definition: PipelineDefinition<C, R>, values: Record<string, unknown>) =>
  Object.fromEntries(
    definition.options.map((o) => {
      const flag = values[o.name];
      const value = flag === true ? "true" : typeof flag === "string" ? flag : o.env ? process.env[o.env] : undefined;
      return [o.name, value];
    }),
  );

const makeDag = <C, R>(ctx: Context<C, R>, target: string): Dag<C, R> => {
  const { config } = loadConfig(ctx.definition, {
    preset: ctx.values.preset as string | undefined,
    configFile: ctx.values.config as string | undefined,
    assignments: (ctx.values.set as string[] | undefined) ?? [],
    options: optionValues(ctx.definition, ctx.values),
  });
  return buildDag(ctx.definition.stages, config, target);
};

const planLines = <C, R>(dag: Dag<C, R>, plan: Plan): string[] => {
  const width = Math.min(48, Math.max(...dag.order.map((id) => id.length)));
  return dag.order.map((id) => {
    const e = plan.entries.get(id)!;
    const detail = e.status === "cached" ? shortKey(e.key) : e.reason;
    return `  ${e.status.padEnd(8)} ${id.padEnd(width)}  ${detail}`;
  });
};

const nodeJson = (r: NodeResult) => ({
  id: r.id,
  stage: r.stage,
  status: r.status,
  key: r.key ?? null,
  artifacts: r.manifest
    ? Object.fromEntries(
        Object.entries(r.manifest.artifacts).map(([name, a]) => [
          name,
          { path: `${r.dir}/${a.file}`, sha256: a.sha256, bytes: a.bytes, ...(a.rows === undefined ? {} : { rows: a.rows }) },
        ]),
      )
    : {},
  durationMs: r.durationMs,
  ...(r.reason ? { reason: r.reason } : {}),
  ...(r.error ? { error: r.error } : {}),
});

const cmdRun = async <C, R>(ctx: Context<C, R>): Promise<number> => {
  const target = ctx.positionals[0];
  if (target === undefined) throw new UsageError("run needs a TARGET (a stage name or all)");
  const jobs = parsePositiveInt(ctx.values.jobs, "--jobs", 2);
  const gpus = parsePositiveInt(ctx.values.gpus, "--gpus", 1);
  const force = new Set((ctx.values.force as string[] | undefined) ?? []);
  for (const s of force) {
    if (!ctx.definition.stages.some((st) => st.name === s)) throw new UsageError(`--force: unknown stage "${s}"`);
  }
  const t0 = performance.now();
  const dag = makeDag(ctx, target);
  const plan = await planDag(dag, ctx.store, { force });
  const counts = planCounts(plan);
  const planMs = performance.now() - t0;
  const json = ctx.values.json === true;
  ctx.err.write(
    `plan ${target}: ${dag.order.length} nodes, ${counts.cached} cached, ${counts.run} to run, ${counts.pending} pending (${planMs.toFixed(0)} ms)\n`,
  );
  if (counts.run + counts.pending > 0 || ctx.values["dry-run"] === true) {
    const lines = planLines(dag, plan).filter((l, i) => ctx.values["dry-run"] === true || plan.entries.get(dag.order[i]!)!.status !== "cached");
    ctx.err.write(`${lines.join("\n")}\n`);
  }
  for (const c of plan.corrupt) ctx.err.write(`corrupt  ${c.nodeId}: ${c.reason}; moved to quarantine, will recompute\n`);
  if (ctx.values["dry-run"] === true) {
    if (json) {
      ctx.out.write(
        `${JSON.stringify({ target, dryRun: true, nodes: dag.order.map((id) => ({ id, ...planEntryJson(plan, id) })) }, null, 2)}\n`,
      );
    }
    return 0;
  }
  if (counts.run + counts.pending === 0 && force.size === 0 && ctx.values.out === undefined) {
    // Nothing to do: the plan already looked every node up, so report it without a second pass.
    const results: NodeResult[] = dag.order.map((id) => {
      const e = plan.entries.get(id)! as Extract<PlanEntry, { status: "cached" }>;
      return { id, stage: dag.nodes.get(id)!.stage.name, status: "cached", key: e.key, manifest: e.manifest, dir: ctx.store.objectDir(e.key), durationMs: 0 };
    });
    ctx.err.write(`summary: 0 ran, ${results.length} cached, 0 failed, 0 skipped in ${(planMs / 1000).toFixed(2)} s\n`);
    if (json) ctx.out.write(`${JSON.stringify({ target, wallMs: Math.round(planMs), nodes: results.map(nodeJson) }, null, 2)}\n`);
    return 0;
  }
  const reporter = makeReporter(ctx.err);
  const started = performance.now();
  const program = executeDag(dag, ctx.store, ctx.definition.layer(optionValues(ctx.definition, ctx.values)), {
    jobs,
    gpus,
    force,
    onEvent: reporter.onEvent,
    tool: { name: ctx.definition.name, version: toolVersion() },
  });
  const fiber = Effect.runFork(program);
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    ctx.err.write("\ninterrupting: stopping running nodes (press Ctrl-C again to exit at once)\n");
    Effect.runFork(Fiber.interrupt(fiber));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const exit = await Effect.runPromise(Fiber.await(fiber));
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  reporter.close();
  if (exit._tag === "Failure") {
    ctx.err.write("interrupted: nothing half-written was cached; rerun the same command to continue\n");
    return 130;
  }
  const results = exit.value;
  const wallMs = performance.now() - started + planMs;
  const by = (s: string) => results.filter((r) => r.status === s);
  ctx.err.write(
    `summary: ${by("ran").length} ran, ${by("cached").length} cached, ${by("failed").length} failed, ${by("skipped").length} skipped in ${(wallMs / 1000).toFixed(2)} s\n`,
  );
  for (const r of [...by("failed"), ...by("skipped")]) ctx.err.write(`  ${finishLine(r)}\n`);
  const outDir = ctx.values.out as string | undefined;
  if (outDir !== undefined) {
    const copied = await copyTargets(dag.targets, results, outDir);
    ctx.err.write(`copied ${copied} artifact file(s) of ${dag.targets.length} target node(s) to ${outDir}\n`);
  }
  if (json) {
    ctx.out.write(`${JSON.stringify({ target, wallMs: Math.round(wallMs), nodes: results.map(nodeJson) }, null, 2)}\n`);
  }
  return by("failed").length + by("skipped").length > 0 ? 1 : 0;
};

/** Copies the artifacts of the target nodes into `outDir`: flat for one target, one folder per node id otherwise. */
const copyTargets = async (targets: ReadonlyArray<string>, results: ReadonlyArray<NodeResult>, outDir: string): Promise<number> => {
  let copied = 0;
  for (const id of targets) {
    const r = results.find((x) => x.id === id);
    if (r?.manifest === undefined || r.dir === undefined) continue;
    const dest = targets.length === 1 ? outDir : join(outDir, id.replace(/[^\w.=,-]+/g, "_"));
    await mkdir(dest, { recursive: true });
    for (const a of Object.values(r.manifest.artifacts)) {
      await copyFile(join(r.dir, a.file), join(dest, a.file));
      copied++;
    }
  }
  return copied;
};

const planEntryJson = (plan: Plan, id: string) => {
  const e = plan.entries.get(id)!;
  return e.status === "cached"
    ? { status: "cached", key: e.key }
    : e.status === "run"
      ? { status: "run", key: e.key, reason: e.reason }
      : { status: "pending", key: null, reason: e.reason };
};

const cmdStatus = async <C, R>(ctx: Context<C, R>): Promise<number> => {
  const target = ctx.positionals[0] ?? "all";
  const dag = makeDag(ctx, target);
  const plan = await planDag(dag, ctx.store);
  if (ctx.values.json === true) {
    ctx.out.write(`${JSON.stringify(dag.order.map((id) => ({ id, ...planEntryJson(plan, id) })), null, 2)}\n`);
    return 0;
  }
  const c = planCounts(plan);
  ctx.out.write(`${target}: ${c.cached} cached, ${c.run} stale, ${c.pending} pending (below a stale node)\n`);
  ctx.out.write(`${planLines(dag, plan).join("\n").replaceAll("  run      ", "  stale    ")}\n`);
  return 0;
};

const cmdDag = async <C, R>(ctx: Context<C, R>): Promise<number> => {
  const target = ctx.positionals[0] ?? "all";
  const format = (ctx.values.format as string | undefined) ?? "text";
  const dag = makeDag(ctx, target);
  ctx.out.write(`${renderDag(dag, format)}\n`);
  return 0;
};

/** Text: one line per node in execution order with its inputs; mermaid and dot: graph sources. */
export const renderDag = <C, R>(dag: Dag<C, R>, format: string): string => {
  const edges = dag.order.flatMap((id) => Object.values(dag.nodes.get(id)!.deps).map((d) => [d, id] as const));
  const index = new Map(dag.order.map((id, i) => [id, `n${i}`]));
  switch (format) {
    case "text":
      return dag.order
        .map((id) => {
          const n = dag.nodes.get(id)!;
          const deps = [...new Set(Object.values(n.deps))];
          const gpu = n.stage.resources === "gpu" ? " (gpu)" : "";
          if (deps.length === 0) return `${id}${gpu}`;
          const shown = deps.length > 4 ? [...deps.slice(0, 3), `... ${deps.length - 3} more`] : deps;
          return `${id}${gpu} <- ${shown.join(", ")}`;
        })
        .join("\n");
    case "mermaid":
      return [
        "graph LR",
        ...dag.order.map((id) => `  ${index.get(id)}["${id.replaceAll('"', "'")}"]`),
        ...[...new Set(edges.map(([a, b]) => `  ${index.get(a)} --> ${index.get(b)}`))],
      ].join("\n");
    case "dot":
      return [
        "digraph pipeline {",
        "  rankdir=LR;",
        ...dag.order.map((id) => `  ${index.get(id)} [label=${JSON.stringify(id)}];`),
        ...[...new Set(edges.map(([a, b]) => `  ${index.get(a)} -> ${index.get(b)};`))],
        "}",
      ].join("\n");
    default:
      throw new UsageError(`unknown --format "${format}" (text, mermaid or dot)`);
  }
};

const cmdInspect = async <C, R>(ctx: Context<C, R>): Promise<number> => {
  const { manifests: all, unreadable } = await ctx.store.list();
  for (const u of unreadable) ctx.err.write(`unreadable cache entry ${u.entry}: ${u.reason}\n`);
  if (ctx.values.list === true) {
    const rows = all
      .map((m) => ({
        key: shortKey(m.key),
        node: m.nodeId,
        finished: m.finishedAt,
        rows: Object.values(m.artifacts).reduce((s, a) => s + (a.rows ?? 0), 0),
        bytes: Object.values(m.artifacts).reduce((s, a) => s + a.bytes, 0),
      }))
      .sort((a, b) => (a.node < b.node ? -1 : 1));
    if (ctx.values.json === true) ctx.out.write(`${JSON.stringify(rows, null, 2)}\n`);
    else for (const r of rows) ctx.out.write(`${r.key}  ${r.node.padEnd(40)} ${String(r.rows).padStart(9)} rows ${formatBytes(r.bytes).padStart(9)}  ${r.finished}\n`);
    return 0;
  }
  if (typeof ctx.values.sql === "string") return inspectSql(ctx, all, ctx.values.sql);
  if (ctx.values.format !== undefined) throw new UsageError("--format goes with --sql (use --json for the artifact view)");
  const ref = ctx.positionals[0];
  if (ref === undefined) throw new UsageError("inspect needs a key, a node id (stage[label]) or STAGE:label; or --list");
  const manifest = await resolveManifest(ctx, all, ref);
  const rowsWanted = parsePositiveInt(ctx.values.rows, "--rows", 5, true);
  const dir = ctx.store.objectDir(manifest.key);
  const tables: Record<string, Array<Record<string, unknown>>> = {};
  for (const [name, a] of Object.entries(manifest.artifacts)) {
    if (a.kind !== "table" || rowsWanted === 0) continue;
    const rows: Array<Record<string, unknown>> = [];
    await readParquetBatches(
      `${dir}/${a.file}`,
      async (batch) => {
        for (const r of batch) if (rows.length < rowsWanted) rows.push(displayRow(r));
        if (rows.length >= rowsWanted) throw new StopReading();
      },
      rowsWanted,
    ).catch((e) => {
      if (!(e instanceof StopReading)) throw e;
    });
    tables[name] = rows;
  }
  if (ctx.values.json === true) {
    ctx.out.write(`${JSON.stringify({ dir, manifest, firstRows: tables }, null, 2)}\n`);
    return 0;
  }
  const o = ctx.out;
  o.write(`${manifest.nodeId}  key ${manifest.key}\n`);
  o.write(`  stage ${manifest.stage} v${manifest.version}, params ${JSON.stringify(manifest.params)}\n`);
  o.write(`  made ${manifest.finishedAt} in ${(manifest.durationMs / 1000).toFixed(2)} s by ${manifest.tool.name} ${manifest.tool.version}\n`);
  if (Object.keys(manifest.runtime).length > 0) o.write(`  runtime ${JSON.stringify(manifest.runtime)}\n`);
  for (const [name, input] of Object.entries(manifest.inputs)) o.write(`  input ${name}: ${input.nodeId} (${shortKey(input.key)})\n`);
  o.write(`  dir ${dir}\n`);
  for (const [name, a] of Object.entries(manifest.artifacts)) {
    o.write(`\n  ${name}: ${a.file}, ${formatBytes(a.bytes)}, sha256 ${a.sha256}${a.rows === undefined ? "" : `, ${a.rows} rows`}\n`);
    if (a.schema) {
      o.write(
        `    schema: ${Object.entries(a.schema as Record<string, { type: string; optional?: boolean }>)
          .map(([c, s]) => `${c} ${s.type}${s.optional ? "?" : ""}`)
          .join(", ")}\n`,
      );
    }
    for (const r of tables[name] ?? []) o.write(`    ${JSON.stringify(r)}\n`);
  }
  return 0;
};

/** `inspect REF... --sql QUERY`: the REFs' table artifacts as views, the query's rows on stdout. */
const inspectSql = async <C, R>(ctx: Context<C, R>, all: ReadonlyArray<Manifest>, sql: string): Promise<number> => {
  if (ctx.positionals.length === 0) throw new UsageError("inspect --sql needs the REFs whose tables the query reads (see: pipeline inspect --list)");
  const format = ctx.values.json === true ? "json" : ((ctx.values.format as string | undefined) ?? "table");
  if (format !== "table" && format !== "csv" && format !== "json") throw new UsageError(`unknown --format "${format}" (table, csv or json)`);
  const maxRows = ctx.values.rows === undefined ? undefined : parsePositiveInt(ctx.values.rows, "--rows", 0, true);
  const manifests: Manifest[] = [];
  for (const ref of ctx.positionals) manifests.push(await resolveManifest(ctx, all, ref));
  const views = viewNames(manifests.map((m) => ({ manifest: m, dir: ctx.store.objectDir(m.key) })));
  if (views.length === 0) throw new UsageError(`${ctx.positionals.join(", ")}: no table artifacts to query`);
  for (const v of views) ctx.err.write(`view ${v.name}: ${v.node} ${v.artifact}\n`);
  const result = await querySql(views, sql, maxRows === undefined ? {} : { maxRows });
  if (result.truncated) ctx.err.write(`stopped after ${maxRows} rows (--rows)\n`);
  ctx.out.write(formatRows(result, format));
  return 0;
};

class StopReading extends Error {}

const displayRow = (row: Record<string, unknown>) =>
  Object.fromEntries(
    Object.entries(row).map(([k, v]) => [
      k,
      v instanceof Uint8Array ? `<${v.length} bytes>` : typeof v === "bigint" ? Number(v) : v,
    ]),
  );

const resolveManifest = async <C, R>(ctx: Context<C, R>, all: ReadonlyArray<Manifest>, ref: string): Promise<Manifest> => {
  if (/^[0-9a-f]{6,64}$/.test(ref)) {
    const hits = all.filter((m) => m.key.startsWith(ref));
    if (hits.length === 1) return hits[0]!;
    if (hits.length > 1) throw new UsageError(`key prefix ${ref} is ambiguous (${hits.length} artifacts)`);
  }
  const colon = /^([^:[\]]+):(.+)$/.exec(ref);
  const nodeId = colon ? `${colon[1]}[${colon[2]}]` : ref;
  // Prefer the artifact the current configuration points at, then the newest with that id.
  try {
    const dag = makeDag(ctx, nodeId.includes("[") ? nodeId : ref);
    const plan = await planDag(dag, ctx.store);
    const e = plan.entries.get(dag.targets.length === 1 ? dag.targets[0]! : "");
    if (e?.status === "cached") return e.manifest;
  } catch {
    // not resolvable under the current configuration: fall back to what is stored
  }
  const byId = all
    .filter((m) => m.nodeId === nodeId || (!ref.includes("[") && !colon && m.stage === ref))
    .sort((a, b) => (a.finishedAt < b.finishedAt ? 1 : -1));
  if (byId.length === 0) throw new UsageError(`no cached artifact matches "${ref}" (try: pipeline inspect --list)`);
  if (!nodeId.includes("[") && new Set(byId.map((m) => m.nodeId)).size > 1) {
    throw new UsageError(`"${ref}" matches several nodes: ${[...new Set(byId.map((m) => m.nodeId))].slice(0, 6).join(", ")}`);
  }
  return byId[0]!;
};

const cmdGc = async <C, R>(ctx: Context<C, R>): Promise<number> => {
  const dag = makeDag(ctx, "all");
  const plan = await planDag(dag, ctx.store);
  const keep = new Set<string>();
  for (const e of plan.entries.values()) if (e.status === "cached") keep.add(e.key);
  const dryRun = ctx.values["dry-run"] === true;
  const { removed, freedBytes } = await ctx.store.gc(keep, { dryRun });
  const verb = dryRun ? "would remove" : "removed";
  ctx.out.write(`${verb} ${removed.length} artifact(s), ${formatBytes(freedBytes)}; kept ${keep.size} reachable from the current configuration\n`);
  for (const k of removed) ctx.out.write(`  ${shortKey(k)}\n`);
  return 0;
};

const formatBytes = (n: number) =>
  n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : n < 1024 ** 3 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${(n / 1024 ** 3).toFixed(2)} GiB`;

const parsePositiveInt = (raw: unknown, flag: string, fallback: number, allowZero = false): number => {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new UsageError(`${flag} expects a ${allowZero ? "non-negative" : "positive"} integer, got "${raw}"`);
  return n;
};

const COMMANDS = {
  run: { run: cmdRun, options: { out: { type: "string" }, "dry-run": { type: "boolean" }, force: { type: "string", multiple: true }, jobs: { type: "string", short: "j" }, gpus: { type: "string" } } },
  status: { run: cmdStatus, options: {} },
  dag: { run: cmdDag, options: { format: { type: "string" } } },
  inspect: { run: cmdInspect, options: { rows: { type: "string" }, list: { type: "boolean" }, sql: { type: "string" }, format: { type: "string" } } },
  gc: { run: cmdGc, options: { "dry-run": { type: "boolean" } } },
  lock: { run: cmdLock, options: LOCK_OPTIONS },
  replay: { run: cmdReplay, options: REPLAY_OPTIONS },
} as const;

/** Runs the CLI with `argv` (without node and script); returns the exit code. */
export const main = async <C, R>(
  definition: PipelineDefinition<C, R>,
  argv: ReadonlyArray<string>,
  streams: { readonly out: NodeJS.WriteStream; readonly err: NodeJS.WriteStream } = { out: process.stdout, err: process.stderr },
): Promise<number> => {
  const { out, err } = streams;
  const extra = Object.entries(definition.commands ?? {})
    .map(([name, c]) => `  ${c.usage.padEnd(17)} ${c.description}`)
    .join("\n");
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === "help" || command === "--help" || command === "-h") {
      out.write(HELP("pipeline", extra) + definitionOptionsHelp(definition));
      return command === undefined ? 2 : 0;
    }
    const own = definition.commands?.[command];
    if (own !== undefined) return await own.run(rest);
    const spec = COMMANDS[command as keyof typeof COMMANDS];
    if (spec === undefined) throw new UsageError(`unknown command "${command}" (run, status, dag, inspect, gc, lock, replay${extra ? ", " + Object.keys(definition.commands ?? {}).join(", ") : ""})`);
    const definitionFlags = Object.fromEntries(
      definition.options.map((o) => [o.name, { type: o.boolean === true ? ("boolean" as const) : ("string" as const) }]),
    );
    let parsed;
    try {
      parsed = parseArgs({ args: [...rest], options: { ...COMMON, ...spec.options, ...definitionFlags }, allowPositionals: true, strict: true });
    } catch (e) {
      throw new UsageError((e as Error).message.split("\n")[0]!);
    }
    if (parsed.values.help === true) {
      out.write(HELP("pipeline", extra) + definitionOptionsHelp(definition));
      return 0;
    }
    const cacheDir = (parsed.values["cache-dir"] as string | undefined) ?? process.env.PIPELINE_CACHE_DIR ?? "./cache";
    const store = await ArtifactStore.open(cacheDir);
    return await spec.run({ definition, values: parsed.values, positionals: parsed.positionals, store, err, out });
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError || e instanceof GraphError || e instanceof SqlError) {
      err.write(`pipeline: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
};

const definitionOptionsHelp = <C, R>(definition: PipelineDefinition<C, R>) =>
  definition.options.length === 0
    ? ""
    : `\n${definition.name} options:\n${definition.options
        .map((o) => `  --${o.name.padEnd(15)} ${o.description}${o.env ? ` (env ${o.env})` : ""}`)
        .join("\n")}\n`;
