/**
 * SQL over cached Parquet artifacts (`pipeline inspect REF... --sql QUERY`): each table artifact becomes a DuckDB view
 * named after it, the query runs in a throwaway in-memory database, and the rows are printed as a table, CSV or JSON.
 * The query is read-only: DuckDB may open only the selected Parquet files (external access off, configuration locked)
 * and only SELECT statements run, so a query cannot write, copy, attach, install or read anything else.
 * DuckDB is imported on first use, so commands that never query do not pay for loading its native engine.
 */
import * as path from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { Data } from "effect";
import type { Manifest } from "../cache/store.ts";

/** A query that DuckDB rejected (syntax, unknown column, unreadable file): one line, meant for the user, no stack. */
export class SqlError extends Data.TaggedError("SqlError")<{ readonly message: string }> {}

/** Query output: column names in order (duplicates made unique by DuckDB as `a`, `a:1`) and one object per row. */
export interface SqlResult {
  readonly columns: string[];
  readonly rows: Record<string, unknown>[];
  /** True when `maxRows` stopped reading before the query's last row. */
  readonly truncated: boolean;
}

/** A table artifact registered as a view. */
export interface SqlView {
  readonly name: string;
  /** Absolute path of the Parquet file. */
  readonly path: string;
  readonly node: string;
  readonly stage: string;
  readonly artifact: string;
  /** The node's parameters (its manifest's params), for the stage views. */
  readonly params: unknown;
  /** The table's column names, from the manifest's schema. */
  readonly columns: ReadonlyArray<string>;
}

/** A view over one artifact of several nodes of a stage: their rows, each with its node's parameters as columns. */
export interface SqlStageView {
  readonly name: string;
  readonly stage: string;
  readonly artifact: string;
  /** The per-node views it unites, in order. */
  readonly members: ReadonlyArray<SqlView>;
  /** The parameter columns added (a parameter named like a table column is left out). */
  readonly parameters: ReadonlyArray<string>;
}

const firstLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split("\n")[0]!.trim();

const quoteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;
const quoteString = (text: string) => `'${text.replaceAll("'", "''")}'`;

/**
 * Runs `sql` over the given Parquet files, each registered as
 * `CREATE VIEW "<name>" AS SELECT * FROM read_parquet(<path>)`, and over `stageViews` (see {@link stageViews}).
 * DOUBLE values come back as JS numbers bit for bit; BIGINT/HUGEINT as bigint; BLOB as Uint8Array; DECIMAL as number.
 * With `maxRows`, reading stops after (about) that many rows and `truncated` says whether more existed.
 * Errors from DuckDB, and statements other than SELECT, are thrown as one-line {@link SqlError}s.
 */
export async function querySql(
  tables: ReadonlyArray<{ readonly name: string; readonly path: string }>,
  sql: string,
  opts: { readonly maxRows?: number; readonly stageViews?: ReadonlyArray<SqlStageView> } = {},
): Promise<SqlResult> {
  const { DuckDBInstance, StatementType } = await import("@duckdb/node-api");
  // Inspecting the cache must not download code: only the extensions bundled with the package (parquet, json, icu)
  // load.
  const instance = await DuckDBInstance.create(":memory:", { autoinstall_known_extensions: "false" });
  let connection: DuckDBConnection | undefined;
  try {
    connection = await instance.connect();
    for (const t of tables) {
      try {
        await connection.run(
          `CREATE VIEW ${quoteIdentifier(t.name)} AS SELECT * FROM read_parquet(${quoteString(t.path)})`,
        );
      } catch (e) {
        throw new SqlError({ message: `view ${t.name} (${t.path}): ${firstLine(e)}` });
      }
    }
    for (const v of opts.stageViews ?? []) await connection.run(stageViewSql(v));
    await lockDown(connection, tables);
    try {
      // DuckDB classifies each statement when it prepares (binds) it, before anything runs: all must be SELECTs.
      const extracted = await connection.extractStatements(sql);
      const prepared = [];
      for (let i = 0; i < extracted.count; i++) {
        const statement = await extracted.prepare(i).catch((e: unknown) => {
          // DuckDB refuses some statements while binding (COPY/EXPORT to a path outside): name the kind if it shows.
          const word = i === 0 ? leadingKeyword(sql) : undefined;
          throw word !== undefined && REFUSED_WORDS.has(word) ? refusal(word) : e;
        });
        if (statement.statementType !== StatementType.SELECT) throw refusal(StatementType[statement.statementType]);
        prepared.push(statement);
      }
      const last = prepared.pop();
      if (last === undefined) throw new SqlError({ message: "--sql: the query is empty" });
      for (const statement of prepared) await statement.run();
      const maxRows = opts.maxRows;
      const reader = maxRows === undefined ? await last.runAndReadAll() : await last.runAndReadUntil(maxRows + 1);
      const rows = reader.getRowObjectsJS() as Record<string, unknown>[];
      const truncated = maxRows !== undefined && rows.length > maxRows;
      return { columns: reader.deduplicatedColumnNames(), rows: truncated ? rows.slice(0, maxRows) : rows, truncated };
    } catch (e) {
      throw e instanceof SqlError ? e : new SqlError({ message: inToolWords(firstLine(e)) });
    }
  } finally {
    connection?.closeSync();
    instance.closeSync();
  }
}

/**
 * Confines the database to the registered Parquet files: DuckDB may open exactly those paths and nothing else
 * (no other file, directory, URL or extension download; `allowed_paths` is an exact-path list), and no later
 * statement can change a setting back (`lock_configuration`). Writing to an allowed path is still possible for
 * DuckDB (`COPY ... TO <artifact> (USE_TMP_FILE false)`), which is why only SELECT statements run.
 */
const lockDown = async (
  connection: DuckDBConnection,
  tables: ReadonlyArray<{ readonly path: string }>,
): Promise<void> => {
  await connection.run(`SET allowed_paths = [${tables.map((t) => quoteString(t.path)).join(", ")}]`);
  await connection.run("SET enable_external_access = false");
  await connection.run("SET lock_configuration = true");
};

/** Statement kinds as a user writes them; DuckDB files INSTALL under LOAD and RESET/USE under SET. */
const KIND_WORDS: Readonly<Record<string, string>> = {
  LOAD: "INSTALL/LOAD",
  SET: "SET/RESET",
  VARIABLE_SET: "SET VARIABLE",
  CREATE_FUNC: "CREATE FUNCTION",
  COPY_DATABASE: "COPY DATABASE",
  UPDATE_EXTENSIONS: "UPDATE EXTENSIONS",
  MERGE_INTO: "MERGE INTO",
};

const refusal = (kind: string) =>
  new SqlError({
    message: `--sql is read-only: ${KIND_WORDS[kind] ?? kind} statements are refused (only SELECT queries run)`,
  });

/** First words of statements that never run under --sql, for naming what DuckDB refused before classifying it. */
const REFUSED_WORDS: ReadonlySet<string> = new Set([
  ...["COPY", "EXPORT", "IMPORT", "ATTACH", "DETACH", "INSTALL", "FORCE", "LOAD", "SET", "RESET", "PRAGMA"],
  ...["CREATE", "INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "TRUNCATE"],
]);

/** The query's first word, upper-cased, after leading blanks and comments. */
const leadingKeyword = (sql: string): string | undefined =>
  /^(?:\s|--[^\n]*\n?|\/\*[\s\S]*?\*\/)*([A-Za-z]+)/.exec(sql)?.[1]?.toUpperCase();

/** DuckDB's refusals under {@link lockDown}, said in the tool's words; other messages pass unchanged. */
const inToolWords = (raw: string): string => {
  const message = raw.replace(/^Failed to extract statements: /, ""); // the node API's prefix on parser errors
  const outside =
    /^Permission Error: Cannot access (?:file|directory) "(.*)" - file system operations are disabled/.exec(message);
  if (outside) return `--sql reads only the selected artifacts' views: "${outside[1]}" is outside them`;
  if (message.startsWith("Permission Error: Loading external extensions is disabled"))
    return "--sql is read-only: it cannot load extensions";
  const locked = /^Invalid Input Error: Cannot change configuration option "(.*)" - the configuration has been locked/;
  const setting = locked.exec(message);
  if (setting) return `--sql is read-only: the setting ${setting[1]} cannot be changed`;
  return message;
};

/** An identifier-like name: runs of other characters become one `_`, no `_` at the ends, never a leading digit. */
const identifierPart = (text: string): string => {
  const cleaned = text.replace(/[^A-Za-z0-9_]+/g, "_").replace(/^_+|_+$/g, "");
  return /^[0-9]/.test(cleaned) || cleaned === "" ? `_${cleaned}` : cleaned;
};

/**
 * View names for the table artifacts of the given manifests: the artifact name where no other artifact shares it,
 * else `<stage>_<artifact>`, else `<node id>_<artifact>` (e.g. train_mnist_d10_s1_epochs), else that plus the key's
 * first 8 hex digits (two cached versions of one node). Names are compared case-insensitively, as DuckDB does.
 * A manifest listed twice (same key) is used once. Order follows the manifests, then their artifacts.
 */
export function viewNames(manifests: ReadonlyArray<{ readonly manifest: Manifest; readonly dir: string }>): SqlView[] {
  const seenKeys = new Set<string>();
  const candidates: Array<{ view: Omit<SqlView, "name">; names: string[] }> = [];
  for (const { manifest, dir } of manifests) {
    if (seenKeys.has(manifest.key)) continue;
    seenKeys.add(manifest.key);
    for (const [artifact, entry] of Object.entries(manifest.artifacts)) {
      if (entry.kind !== "table") continue;
      const a = identifierPart(artifact);
      const names = [a, `${identifierPart(manifest.stage)}_${a}`, `${identifierPart(manifest.nodeId)}_${a}`];
      names.push(`${names[2]}_${manifest.key.slice(0, 8)}`);
      const view = {
        path: path.resolve(dir, entry.file),
        node: manifest.nodeId,
        stage: manifest.stage,
        artifact,
        params: manifest.params,
        columns: typeof entry.schema === "object" && entry.schema !== null ? Object.keys(entry.schema) : [],
      };
      candidates.push({ view, names });
    }
  }
  // Every artifact starts at its shortest name; all members of a clash move on to their next name, until none clash.
  const level = candidates.map(() => 0);
  const nameOf = (i: number) => candidates[i]!.names[level[i]!]!;
  for (;;) {
    const byName = new Map<string, number[]>();
    candidates.forEach((_, i) => {
      const k = nameOf(i).toLowerCase();
      byName.set(k, [...(byName.get(k) ?? []), i]);
    });
    const clashing = [...byName.values()].filter((group) => group.length > 1).flat();
    const movable = clashing.filter((i) => level[i]! < candidates[i]!.names.length - 1);
    if (movable.length === 0) break;
    for (const i of movable) level[i]!++;
  }
  // The last names differ unless one manifest has artifacts alike up to case and punctuation ("a-b", "A_b"): number
  // those.
  const taken = new Set<string>();
  return candidates.map((c, i) => {
    let name = nameOf(i);
    for (let n = 2; taken.has(name.toLowerCase()); n++) name = `${nameOf(i)}_${n}`;
    taken.add(name.toLowerCase());
    return { name, ...c.view };
  });
}

/**
 * One view per (stage, artifact) that several of `views` share (e.g. the perturbations of every selected probe node),
 * holding all their rows with the node's parameters as leading columns, so one query compares nodes (`select L,
 * avg(scaled) from perturbations group by all`). Named after the artifact, else `<stage>_<artifact>`, else that plus
 * `_all`: the first name no per-node view or earlier stage view has. Parameters are the union over the nodes (NULL
 * where a node lacks one); one named like a table column is left out, the column wins; objects become JSON text.
 */
export function stageViews(views: ReadonlyArray<SqlView>): SqlStageView[] {
  const groups = new Map<string, SqlView[]>();
  for (const v of views) {
    const group = JSON.stringify([v.stage, v.artifact]);
    groups.set(group, [...(groups.get(group) ?? []), v]);
  }
  const taken = new Set(views.map((v) => v.name.toLowerCase()));
  const result: SqlStageView[] = [];
  for (const members of groups.values()) {
    if (members.length < 2) continue;
    const { stage, artifact } = members[0]!;
    const a = identifierPart(artifact);
    const stageArtifact = `${identifierPart(stage)}_${a}`;
    const name = [a, stageArtifact, `${stageArtifact}_all`].find((n) => !taken.has(n.toLowerCase()));
    if (name === undefined) continue; // every name is a per-node view already: the per-node views stay usable
    taken.add(name.toLowerCase());
    const columns = new Set(members.flatMap((m) => m.columns.map((c) => c.toLowerCase())));
    const parameters = [...new Set(members.flatMap((m) => Object.keys(paramsOf(m))))].filter(
      (p) => !columns.has(p.toLowerCase()),
    );
    result.push({ name, stage, artifact, members, parameters });
  }
  return result;
}

const paramsOf = (view: SqlView): Record<string, unknown> =>
  typeof view.params === "object" && view.params !== null && !Array.isArray(view.params)
    ? (view.params as Record<string, unknown>)
    : {};

/** A parameter value as a SQL literal: integers as integers, other numbers as exact DOUBLEs, objects as JSON text. */
const sqlLiteral = (value: unknown): string => {
  if (value === null || value === undefined) return "NULL";
  if (typeof value === "boolean") return value ? "TRUE" : "FALSE";
  if (typeof value === "number")
    return Number.isInteger(value) ? String(value) : `CAST(${quoteString(String(value))} AS DOUBLE)`;
  if (typeof value === "string") return quoteString(value);
  return quoteString(JSON.stringify(value));
};

/** `CREATE VIEW` for a stage view: each member's rows with its parameters, united by column name. */
const stageViewSql = (view: SqlStageView): string => {
  const parts = view.members.map((m) => {
    const params = paramsOf(m);
    const literals = view.parameters.map((p) => `${sqlLiteral(params[p])} AS ${quoteIdentifier(p)}`);
    return `SELECT ${[...literals, "*"].join(", ")} FROM ${quoteIdentifier(m.name)}`;
  });
  return `CREATE VIEW ${quoteIdentifier(view.name)} AS ${parts.join(" UNION ALL BY NAME ")}`;
};

const MAX_CELL_WIDTH = 60;

/** A JSON-safe value: bigint as number when exact, else string; bytes as base64; non-finite numbers as strings. */
const jsonValue = (v: unknown): unknown => {
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (typeof v === "number") return Number.isFinite(v) ? v : String(v);
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(jsonValue);
  if (typeof v === "object" && v !== null)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonValue(x)]));
  return v;
};

/** One cell as text for the table and CSV formats; null is undefined so each format can show it its own way. */
const cellText = (v: unknown): string | undefined => {
  if (v === null || v === undefined) return undefined;
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (v instanceof Date) return v.toISOString();
  if (typeof v === "object") return JSON.stringify(jsonValue(v));
  const primitive = v as string | number | bigint | boolean; // what is left: a row holds no functions or symbols
  return String(primitive); // numbers print their shortest round-tripping form, bigints all their digits
};

const csvField = (text: string) => (/[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);

/**
 * Query output as text, ending in a newline. `table`: aligned columns (numbers right-aligned, NULL for null, newlines
 * shown as \n, long cells cut to 60 characters) and a row count; `csv`: a header line, RFC 4180 quoting, null as an
 * empty field; `json`: an array with one object per row, per line. Bytes are `<N bytes>` in table and CSV, base64 in
 * JSON. `maxRows` limits the rows printed in every format.
 */
export function formatRows(
  result: {
    readonly columns: ReadonlyArray<string>;
    readonly rows: ReadonlyArray<Record<string, unknown>>;
    readonly truncated?: boolean;
  },
  format: "table" | "csv" | "json",
  opts: { readonly maxRows?: number } = {},
): string {
  const rows = opts.maxRows === undefined ? result.rows : result.rows.slice(0, opts.maxRows);
  switch (format) {
    case "json":
      return rows.length === 0 ? "[]\n" : `[\n${rows.map((r) => JSON.stringify(jsonValue(r))).join(",\n")}\n]\n`;
    case "csv":
      return [result.columns, ...rows.map((r) => result.columns.map((c) => cellText(r[c]) ?? ""))]
        .map((fields) => `${fields.map(csvField).join(",")}\n`)
        .join("");
    case "table": {
      const shown = (v: unknown) => {
        const text = (cellText(v) ?? "NULL").replaceAll("\r", "\\r").replaceAll("\n", "\\n");
        return text.length > MAX_CELL_WIDTH ? `${text.slice(0, MAX_CELL_WIDTH - 1)}…` : text;
      };
      const cells = rows.map((r) => result.columns.map((c) => shown(r[c])));
      const widths = result.columns.map((c, j) => Math.max(c.length, ...cells.map((line) => line[j]!.length)));
      const numeric = result.columns.map((c) => rows.some((r) => typeof r[c] === "number" || typeof r[c] === "bigint"));
      const pad = (text: string, j: number) => (numeric[j] ? text.padStart(widths[j]!) : text.padEnd(widths[j]!));
      const line = (texts: string[]) => `${texts.map(pad).join("  ").trimEnd()}\n`;
      const more = rows.length < result.rows.length || result.truncated === true;
      const count = more
        ? `(first ${rows.length} rows; more not shown)`
        : `(${rows.length} row${rows.length === 1 ? "" : "s"})`;
      return `${line([...result.columns])}${line(widths.map((w) => "-".repeat(w)))}${cells.map(line).join("")}${count}\n`;
    }
  }
}
