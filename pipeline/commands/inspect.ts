/**
 * `pipeline inspect REF [--rows N] [--json]`, `inspect --list`, and `inspect REF... --sql QUERY`: an artifact's
 * manifest, schema and first rows; every cached artifact; or SQL (DuckDB) over the REFs' tables.
 */
import { Effect } from "effect";
import { Store, StoreError } from "../../cache/service.ts";
import type { Manifest } from "../../cache/store.ts";
import { readParquetBatches } from "../parquet.ts";
import { planDag, shortKey } from "../plan.ts";
import { formatRows, querySql, stageViews, viewNames } from "../sql.ts";
import { positiveInt } from "./args.ts";
import { dagFromFlags, defineCommand, type CommandContext } from "./context.ts";
import { attemptPromise, UsageError } from "./errors.ts";
import { formatBytes } from "./plan-view.ts";

const FLAGS = {
  rows: { type: "string" },
  list: { type: "boolean" },
  sql: { type: "string" },
  format: { type: "string" },
} as const;

type InspectContext<C, R> = CommandContext<C, R, typeof FLAGS>;

export const inspect = defineCommand({
  name: "inspect",
  store: "read",
  flags: FLAGS,
  run: (ctx) =>
    Effect.gen(function* () {
      const store = yield* Store;
      const { manifests: all, unreadable } = yield* store.list;
      for (const u of unreadable) ctx.err.write(`unreadable cache entry ${u.entry}: ${u.reason}\n`);
      if (ctx.flags.list) {
        listArtifacts(ctx, all);
        return 0;
      }
      if (ctx.flags.sql !== undefined) return yield* inspectSql(ctx, all, ctx.flags.sql);
      if (ctx.flags.format !== undefined) {
        return yield* new UsageError({ message: "--format goes with --sql (use --json for the artifact view)" });
      }
      const ref = ctx.positionals[0];
      if (ref === undefined) {
        return yield* new UsageError({
          message: "inspect needs a key, a node id (stage[label]) or STAGE:label; or --list",
        });
      }
      const manifest = yield* resolveManifest(ctx, all, ref);
      const rowsWanted = yield* positiveInt(ctx.flags.rows, "--rows", 5, true);
      const dir = store.artifactDir(manifest.key);
      const tables: Record<string, Array<Record<string, unknown>>> = {};
      for (const [name, a] of Object.entries(manifest.artifacts)) {
        if (a.kind !== "table" || rowsWanted === 0) continue;
        tables[name] = yield* firstRows(`${dir}/${a.file}`, rowsWanted);
      }
      if (ctx.common.json) {
        ctx.out.write(`${JSON.stringify({ dir, manifest, firstRows: tables }, null, 2)}\n`);
        return 0;
      }
      const o = ctx.out;
      const made = `made ${manifest.finishedAt} in ${(manifest.durationMs / 1000).toFixed(2)} s`;
      o.write(`${manifest.nodeId}  key ${manifest.key}\n`);
      o.write(`  stage ${manifest.stage} v${manifest.version}, params ${JSON.stringify(manifest.params)}\n`);
      o.write(`  ${made} by ${manifest.tool.name} ${manifest.tool.version}\n`);
      if (Object.keys(manifest.runtime).length > 0) o.write(`  runtime ${JSON.stringify(manifest.runtime)}\n`);
      for (const [name, input] of Object.entries(manifest.inputs))
        o.write(`  input ${name}: ${input.nodeId} (${shortKey(input.key)})\n`);
      o.write(`  dir ${dir}\n`);
      for (const [name, a] of Object.entries(manifest.artifacts)) {
        const rows = a.rows === undefined ? "" : `, ${a.rows} rows`;
        o.write(`\n  ${name}: ${a.file}, ${formatBytes(a.bytes)}, sha256 ${a.sha256}${rows}\n`);
        if (a.schema) {
          const columns = Object.entries(a.schema as Record<string, { type: string; optional?: boolean }>)
            .map(([c, s]) => `${c} ${s.type}${s.optional ? "?" : ""}`)
            .join(", ");
          o.write(`    schema: ${columns}\n`);
        }
        for (const r of tables[name] ?? []) o.write(`    ${JSON.stringify(r)}\n`);
      }
      return 0;
    }),
});

const listArtifacts = <C, R>(ctx: InspectContext<C, R>, all: ReadonlyArray<Manifest>) => {
  const rows = all
    .map((m) => ({
      key: shortKey(m.key),
      node: m.nodeId,
      finished: m.finishedAt,
      rows: Object.values(m.artifacts).reduce((s, a) => s + (a.rows ?? 0), 0),
      bytes: Object.values(m.artifacts).reduce((s, a) => s + a.bytes, 0),
    }))
    .sort((a, b) => (a.node < b.node ? -1 : 1));
  if (ctx.common.json) ctx.out.write(`${JSON.stringify(rows, null, 2)}\n`);
  else {
    for (const r of rows) {
      const size = `${String(r.rows).padStart(9)} rows ${formatBytes(r.bytes).padStart(9)}`;
      ctx.out.write(`${r.key}  ${r.node.padEnd(40)} ${size}  ${r.finished}\n`);
    }
  }
};

/** Thrown by the batch callback to stop reading once enough rows were seen. */
const STOP_READING = new Error("stop reading");

/** The first `wanted` rows of a Parquet table, for display (bytes summarised, INT64 as numbers). */
const firstRows = (file: string, wanted: number) =>
  Effect.tryPromise({
    try: async () => {
      const rows: Array<Record<string, unknown>> = [];
      await readParquetBatches(
        file,
        async (batch) => {
          for (const r of batch) if (rows.length < wanted) rows.push(displayRow(r));
          if (rows.length >= wanted) throw STOP_READING;
        },
        wanted,
      ).catch((e: unknown) => {
        if (e !== STOP_READING) throw e;
      });
      return rows;
    },
    catch: (e) => new StoreError({ message: `cannot read ${file}: ${(e as Error).message}`, cause: e }),
  });

const displayRow = (row: Record<string, unknown>) =>
  Object.fromEntries(
    Object.entries(row).map(([k, v]) => [
      k,
      v instanceof Uint8Array ? `<${v.length} bytes>` : typeof v === "bigint" ? Number(v) : v,
    ]),
  );

/**
 * `inspect REF... --sql QUERY`: the REFs' table artifacts as views (one per node, plus one per stage across its
 * nodes with their parameters as columns), the read-only query's rows on stdout.
 */
const inspectSql = <C, R>(ctx: InspectContext<C, R>, all: ReadonlyArray<Manifest>, sql: string) =>
  Effect.gen(function* () {
    const store = yield* Store;
    if (ctx.positionals.length === 0) {
      const message = "inspect --sql needs the REFs whose tables the query reads (see: pipeline inspect --list)";
      return yield* new UsageError({ message });
    }
    const format = ctx.common.json ? "json" : (ctx.flags.format ?? "table");
    if (format !== "table" && format !== "csv" && format !== "json") {
      return yield* new UsageError({ message: `unknown --format "${format}" (table, csv or json)` });
    }
    const maxRows = ctx.flags.rows === undefined ? undefined : yield* positiveInt(ctx.flags.rows, "--rows", 0, true);
    const manifests: Manifest[] = [];
    for (const ref of ctx.positionals) manifests.push(yield* resolveManifest(ctx, all, ref));
    const views = viewNames(manifests.map((m) => ({ manifest: m, dir: store.artifactDir(m.key) })));
    if (views.length === 0)
      return yield* new UsageError({ message: `${ctx.positionals.join(", ")}: no table artifacts to query` });
    for (const v of views) ctx.err.write(`view ${v.name}: ${v.node} ${v.artifact}\n`);
    const across = stageViews(views);
    for (const v of across) {
      const columns = v.parameters.length === 0 ? "" : `, columns ${v.parameters.join(", ")}`;
      ctx.err.write(`view ${v.name}: ${v.stage} ${v.artifact} of ${v.members.length} nodes${columns}\n`);
    }
    const opts = { stageViews: across, ...(maxRows === undefined ? {} : { maxRows }) };
    const result = yield* attemptPromise(() => querySql(views, sql, opts));
    if (result.truncated) ctx.err.write(`stopped after ${maxRows} rows (--rows)\n`);
    ctx.out.write(formatRows(result, format));
    return 0;
  });

/** The artifact a REF names: a key prefix, a node id or STAGE:label (current configuration first, then newest). */
const resolveManifest = <C, R>(ctx: InspectContext<C, R>, all: ReadonlyArray<Manifest>, ref: string) =>
  Effect.gen(function* () {
    if (/^[0-9a-f]{6,64}$/.test(ref)) {
      const hits = all.filter((m) => m.key.startsWith(ref));
      if (hits.length === 1) return hits[0]!;
      if (hits.length > 1)
        return yield* new UsageError({ message: `key prefix ${ref} is ambiguous (${hits.length} artifacts)` });
    }
    const colon = /^([^:[\]]+):(.+)$/.exec(ref);
    const nodeId = colon ? `${colon[1]}[${colon[2]}]` : ref;
    // Prefer the artifact the current configuration points at, then the newest with that id.
    const current = yield* Effect.gen(function* () {
      const dag = yield* dagFromFlags(ctx, nodeId.includes("[") ? nodeId : ref);
      const plan = yield* planDag(dag);
      const e = plan.entries.get(dag.targets.length === 1 ? dag.targets[0]! : "");
      return e?.status === "cached" ? e.manifest : undefined;
    }).pipe(Effect.orElseSucceed(() => undefined)); // not resolvable under the current configuration
    if (current !== undefined) return current;
    const byId = all
      .filter((m) => m.nodeId === nodeId || (!ref.includes("[") && !colon && m.stage === ref))
      .sort((a, b) => (a.finishedAt < b.finishedAt ? 1 : -1));
    if (byId.length === 0)
      return yield* new UsageError({ message: `no cached artifact matches "${ref}" (try: pipeline inspect --list)` });
    const ids = [...new Set(byId.map((m) => m.nodeId))];
    if (!nodeId.includes("[") && ids.length > 1) {
      return yield* new UsageError({ message: `"${ref}" matches several nodes: ${ids.slice(0, 6).join(", ")}` });
    }
    return byId[0]!;
  });
