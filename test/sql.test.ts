import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArtifactStore, type Manifest } from "../cache/store.ts";
import { main } from "../pipeline/cli.ts";
import { readParquet, writeParquet } from "../pipeline/parquet.ts";
import { formatRows, querySql, SqlError, viewNames } from "../pipeline/sql.ts";
import type { TableOutput } from "../pipeline/table.ts";
import { fakePipeline } from "./fixtures/fake-pipeline.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sql-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const spec = (columns: TableOutput["columns"]): TableOutput => ({ kind: "table", description: "", columns });

/** The IEEE-754 bits of a double, so -0 vs 0 and every last bit count. */
const bits = (x: number) => new BigUint64Array(new Float64Array([x]).buffer)[0]!;

/** Awkward doubles: non-terminating binary fractions, extremes, subnormals, integers beyond 2^53, -0. */
const AWKWARD = [
  0.1,
  1 / 3,
  Math.PI,
  5e-324,
  Number.MAX_VALUE,
  -Number.MIN_VALUE,
  2 ** 53 + 2,
  123456789.12345679,
  -2.5e-300,
  -0,
];

describe("querySql over files written by writeParquet", () => {
  const n = 10_000; // more than one 8192-row group
  const rows = Array.from({ length: n }, (_, i) => ({
    i,
    // from -2^52 to beyond 2^53: read back as numbers while exact, as bigints past 2^53
    big: BigInt(i) * 1_000_000_007n * 2048n - 2n ** 52n,
    x: AWKWARD[i] ?? (Math.sin(i) * 1e3) / 7,
    opt: i % 3 === 0 ? null : i / 7,
    s: i % 5 === 0 ? null : `row ${i}, "quoted"\nü`,
    flag: i % 2 === 0,
    raw: new Uint8Array([i & 255, 0, 255]),
  }));
  let file: string;
  beforeAll(async () => {
    file = join(dir, "wide.parquet");
    await writeParquet(
      file,
      spec({
        i: { type: "INT32" },
        big: { type: "INT64" },
        x: { type: "DOUBLE" },
        opt: { type: "DOUBLE", optional: true },
        s: { type: "UTF8", optional: true },
        flag: { type: "BOOLEAN" },
        raw: { type: "BYTE_ARRAY" },
      }),
      rows,
    );
  });

  it("reads every value as pipeline/parquet.ts does: doubles bit for bit, nulls, int64, strings and bytes", async () => {
    const viaReader = await readParquet(file);
    const viaDuckdb = await querySql([{ name: "wide", path: file }], "SELECT * FROM wide ORDER BY i");
    expect(viaDuckdb.columns).toEqual(["i", "big", "x", "opt", "s", "flag", "raw"]);
    expect(viaDuckdb.rows).toHaveLength(n);
    expect(viaReader).toHaveLength(n);
    const mismatches: string[] = [];
    viaDuckdb.rows.forEach((d, k) => {
      const p = viaReader[k]!;
      const same =
        d.i === p.i &&
        typeof d.x === "number" &&
        bits(d.x) === bits(p.x as number) &&
        (d.opt === null ? p.opt === null : typeof d.opt === "number" && bits(d.opt) === bits(p.opt as number)) &&
        d.s === p.s &&
        d.flag === p.flag &&
        d.big === BigInt(p.big as bigint | number) &&
        d.raw instanceof Uint8Array &&
        Buffer.compare(d.raw, p.raw as Uint8Array) === 0;
      if (!same)
        mismatches.push(`row ${k}: duckdb ${String(d.x)} ${String(d.s)}, reader ${String(p.x)} ${String(p.s)}`);
    });
    expect(mismatches.slice(0, 5)).toEqual([]);
    // and against what was written, not only against the other reader
    expect(viaDuckdb.rows.map((r) => bits(r.x as number))).toEqual(rows.map((r) => bits(r.x)));
    expect(viaDuckdb.rows.map((r) => r.big)).toEqual(rows.map((r) => r.big));
    const safe = (v: bigint) => v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER);
    expect(viaReader.map((r) => r.big)).toEqual(rows.map((r) => (safe(r.big) ? Number(r.big) : r.big)));
    expect(rows.filter((r) => !safe(r.big)).length).toBeGreaterThan(1000);
    expect(Object.is(viaReader[AWKWARD.indexOf(-0)]!.x, -0)).toBe(true);
  });

  it("counts, aggregates and filters nulls", async () => {
    const r = await querySql(
      [{ name: "wide", path: file }],
      `SELECT count(*) AS n, count(opt) AS with_opt, count(*) FILTER (WHERE s IS NULL) AS no_s, sum(i) AS sum_i,
              max(x) AS max_x, min(x) AS min_x, sum(CASE WHEN flag THEN 1 ELSE 0 END) AS flagged FROM wide`,
    );
    expect(r.rows).toHaveLength(1);
    const row = r.rows[0]!;
    const xs = rows.map((q) => q.x);
    expect(row.n).toBe(BigInt(n));
    expect(row.with_opt).toBe(BigInt(rows.filter((q) => q.opt !== null).length));
    expect(row.no_s).toBe(BigInt(rows.filter((q) => q.s === null).length));
    expect(row.sum_i).toBe(BigInt((n * (n - 1)) / 2));
    expect(row.max_x).toBe(Math.max(...xs));
    expect(row.min_x).toBe(Math.min(...xs));
    expect(row.flagged).toBe(BigInt(n / 2));
  });

  it("joins two views", async () => {
    const people = join(dir, "people.parquet");
    const scores = join(dir, "scores.parquet");
    await writeParquet(people, spec({ id: { type: "INT32" }, name: { type: "UTF8" } }), [
      { id: 1, name: "ada" },
      { id: 2, name: "bob" },
      { id: 3, name: "cy" },
    ]);
    const scoreRows = [
      { id: 1, score: 0.5 },
      { id: 1, score: 0.25 },
      { id: 2, score: 2 },
      { id: 4, score: 9 },
    ];
    await writeParquet(scores, spec({ id: { type: "INT32" }, score: { type: "DOUBLE" } }), scoreRows);
    const r = await querySql(
      [
        { name: "people", path: people },
        { name: "scores", path: scores },
      ],
      "SELECT p.name, sum(s.score) AS total, count(s.id) AS n FROM people p LEFT JOIN scores s USING (id) GROUP BY p.name ORDER BY p.name",
    );
    expect(r.columns).toEqual(["name", "total", "n"]);
    expect(r.rows).toEqual([
      { name: "ada", total: 0.75, n: 2n },
      { name: "bob", total: 2, n: 1n },
      { name: "cy", total: null, n: 0n },
    ]);
  });

  it("reads an empty table", async () => {
    const empty = join(dir, "empty.parquet");
    await writeParquet(empty, spec({ a: { type: "DOUBLE", optional: true } }), []);
    const r = await querySql([{ name: "empty", path: empty }], "SELECT count(*) AS n, sum(a) AS s FROM empty");
    expect(r.rows).toEqual([{ n: 0n, s: null }]);
  });

  it("stops reading at maxRows and says so", async () => {
    const cut = await querySql([], "SELECT range AS k FROM range(10000)", { maxRows: 5 });
    expect(cut.rows.map((r) => r.k)).toEqual([0n, 1n, 2n, 3n, 4n]);
    expect(cut.truncated).toBe(true);
    const whole = await querySql([], "SELECT range AS k FROM range(10000)", { maxRows: 10000 });
    expect(whole.rows).toHaveLength(10000);
    expect(whole.truncated).toBe(false);
  });

  it("turns DuckDB errors into one-line SqlErrors", async () => {
    const syntax = await querySql([], "SELEC 1").catch((e: unknown) => e);
    expect(syntax).toBeInstanceOf(SqlError);
    expect((syntax as Error).message).toMatch(/^Parser Error: syntax error at or near "SELEC"$/);
    const column = await querySql([{ name: "wide", path: file }], "SELECT nope FROM wide").catch((e: unknown) => e);
    expect(column).toBeInstanceOf(SqlError);
    expect((column as Error).message).toMatch(/nope/);
    expect((column as Error).message).not.toContain("\n");
    const missing = await querySql([{ name: "gone", path: join(dir, "it's gone.parquet") }], "SELECT 1").catch(
      (e: unknown) => e,
    );
    expect(missing).toBeInstanceOf(SqlError);
    expect((missing as Error).message).toMatch(/^view gone \(.*it's gone\.parquet\): IO Error/);
    expect((missing as Error).message).not.toContain("\n");
  });

  it("reads paths with quotes in them", async () => {
    const odd = join(dir, `it's "odd".parquet`);
    await writeParquet(odd, spec({ v: { type: "INT32" } }), [{ v: 41 }, { v: 1 }]);
    const r = await querySql([{ name: "odd", path: odd }], "SELECT sum(v) AS s FROM odd");
    expect(r.rows).toEqual([{ s: 42n }]);
  });
});

describe("viewNames", () => {
  const manifest = (stage: string, label: string, key: string, artifacts: Record<string, "table" | "file">): Manifest =>
    ({
      key: key.padEnd(64, "0"),
      nodeId: `${stage}[${label}]`,
      stage,
      artifacts: Object.fromEntries(
        Object.entries(artifacts).map(([name, kind]) => [
          name,
          { file: `${name}.${kind === "table" ? "parquet" : "bin"}`, kind, bytes: 1, sha256: "" },
        ]),
      ),
    }) as unknown as Manifest;

  it("uses the artifact name when unique, else the stage, else the node id, else the key", () => {
    const views = viewNames(
      [
        manifest("source", "a", "a1", { numbers: "table" }),
        manifest("preprocess", "mnist", "b1", { stats: "table", labels: "table" }),
        manifest("aggregate", "all", "c1", { stats: "table", Labels2: "table" }),
        manifest("train", "mnist-d10-s1", "d1", { epochs: "table", weights: "file" }),
        manifest("train", "mnist-d10-s2", "e1", { epochs: "table" }),
        manifest("fit", "x", "f1", { fits: "table" }),
        manifest("fit", "x", "f2", { fits: "table" }), // an older version of the same node
        manifest("fit", "x", "f1", { fits: "table" }), // listed twice: used once
        manifest("probe", "y", "aa", { NUMBERS: "table" }), // DuckDB names are case-insensitive
      ].map((m) => ({ manifest: m, dir: "/cache/objects/" + m.key })),
    );
    expect(views.map((v) => [v.name, v.node, v.artifact])).toEqual([
      ["source_numbers", "source[a]", "numbers"],
      ["preprocess_stats", "preprocess[mnist]", "stats"],
      ["labels", "preprocess[mnist]", "labels"],
      ["aggregate_stats", "aggregate[all]", "stats"],
      ["Labels2", "aggregate[all]", "Labels2"],
      ["train_mnist_d10_s1_epochs", "train[mnist-d10-s1]", "epochs"],
      ["train_mnist_d10_s2_epochs", "train[mnist-d10-s2]", "epochs"],
      [`fit_x_fits_${"f1".padEnd(8, "0")}`, "fit[x]", "fits"],
      [`fit_x_fits_${"f2".padEnd(8, "0")}`, "fit[x]", "fits"],
      ["probe_NUMBERS", "probe[y]", "NUMBERS"],
    ]);
    expect(views[0]!.path).toBe(`/cache/objects/${"a1".padEnd(64, "0")}/numbers.parquet`);
    expect(new Set(views.map((v) => v.name.toLowerCase())).size).toBe(views.length);
  });

  it("keeps names unique even for artifacts alike up to case", () => {
    const views = viewNames([{ manifest: manifest("s", "n", "k", { a: "table", A: "table" }), dir: "/d" }]);
    expect(views.map((v) => v.name.toLowerCase()).sort()).toEqual(["s_n_a_k0000000", "s_n_a_k0000000_2"]);
  });
});

describe("formatRows", () => {
  const result = {
    columns: ["name", "n", "big", "x", "blob"],
    rows: [
      { name: "plain", n: 1, big: 2n ** 60n, x: 0.1, blob: new Uint8Array([1, 2, 3]) },
      { name: 'a,b "c"\nd', n: -20, big: 7n, x: null, blob: Buffer.from("hi") },
    ],
  };

  it("CSV quotes commas, quotes and newlines (RFC 4180) and leaves nulls empty", () => {
    expect(formatRows(result, "csv")).toBe(
      'name,n,big,x,blob\nplain,1,1152921504606846976,0.1,<3 bytes>\n"a,b ""c""\nd",-20,7,,<2 bytes>\n',
    );
  });

  it("JSON keeps bigints exact (number when safe, else string) and bytes as base64", () => {
    const text = formatRows(result, "json");
    expect(JSON.parse(text)).toEqual([
      { name: "plain", n: 1, big: "1152921504606846976", x: 0.1, blob: "AQID" },
      { name: 'a,b "c"\nd', n: -20, big: 7, x: null, blob: "aGk=" },
    ]);
    expect(text.split("\n")).toHaveLength(5); // "[", one line per row, "]", ""
    expect(formatRows({ columns: ["a"], rows: [] }, "json")).toBe("[]\n");
  });

  it("aligns a text table, numbers to the right, and counts rows", () => {
    const lines = formatRows(result, "table").trimEnd().split("\n");
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^name\s+n\s+big\s+x\s+blob$/);
    expect(lines[1]).toMatch(/^-+ {2}-+ {2}-+ {2}-+ {2}-+$/);
    expect(lines[2]).toContain("<3 bytes>");
    expect(lines[3]).toContain('a,b "c"\\nd');
    expect(lines[3]).toContain("NULL");
    // numbers end at the same column
    const end = (line: string, text: string) => line.indexOf(text) + text.length;
    expect(end(lines[2]!, " 1 ")).toBe(end(lines[3]!, "-20 "));
    expect(lines[4]).toBe("(2 rows)");
    expect(formatRows(result, "table", { maxRows: 1 }).trimEnd().split("\n").at(-1)).toBe(
      "(first 1 rows; more not shown)",
    );
    expect(formatRows(result, "csv", { maxRows: 1 }).split("\n")).toHaveLength(3);
  });
});

describe("end to end over a cached pipeline run", () => {
  it("sums a column across the artifacts of a fake pipeline run", async () => {
    const work = join(dir, "e2e");
    const cacheDir = join(work, "cache");
    rmSync(work, { recursive: true, force: true });
    await import("node:fs/promises").then((fs) => fs.mkdir(work, { recursive: true }));
    const inputs = { a: [1, 2, 3], b: [4, 5] };
    for (const [name, xs] of Object.entries(inputs)) writeFileSync(join(work, `${name}.txt`), xs.join(" "));
    writeFileSync(join(work, "behaviour.json"), JSON.stringify({ failOn: [], sleepMs: 0 }));
    const sink = { isTTY: false, columns: 120, write: () => true } as unknown as NodeJS.WriteStream;
    expect(await main(fakePipeline(work), ["run", "all", "--cache-dir", cacheDir], { out: sink, err: sink })).toBe(0);

    const store = await ArtifactStore.open(cacheDir);
    const { manifests } = await store.list();
    const views = viewNames(manifests.map((m) => ({ manifest: m, dir: store.artifactDir(m.key) })));
    expect(views.map((v) => v.name).sort()).toEqual([
      "power_a_powers",
      "power_b_powers",
      "source_a_numbers",
      "source_b_numbers",
      "total",
    ]);

    const r = await querySql(
      views,
      `SELECT (SELECT sum(y) FROM (SELECT y FROM power_a_powers UNION ALL SELECT y FROM power_b_powers)) AS summed,
              (SELECT total FROM total) AS stored,
              (SELECT count(*) FROM source_a_numbers) AS n_a`,
    );
    const squares = Object.values(inputs)
      .flat()
      .reduce((s, x) => s + x * x, 0);
    expect(r.rows).toEqual([{ summed: squares, stored: squares, n_a: BigInt(inputs.a.length) }]);
  });
});
