/**
 * `inspect --sql` is read-only and sees only the selected artifacts: every statement that could write, copy, attach,
 * install or read another file is refused in one line with exit code 2, through the real CLI, DuckDB and a cache
 * filled by real runs of the fake pipeline. Also the stage views across nodes with their parameters as columns.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ArtifactStore, type Manifest } from "../cache/store.ts";
import { main } from "../pipeline/cli.ts";
import { stageViews } from "../pipeline/sql.ts";
import { capture } from "./fixtures/capture.ts";
import { fakePipeline } from "./fixtures/fake-pipeline.ts";

let work: string;
let cacheDir: string;
let manifests: ReadonlyArray<Manifest>;
let objectDir: (key: string) => string;
let entryPath: (key: string) => string;

const cli = async (argv: ReadonlyArray<string>) => {
  const out = capture();
  const err = capture();
  const code = await main(fakePipeline(work), [...argv, "--cache-dir", cacheDir], { out: out.stream, err: err.stream });
  return { code, out: out.text(), err: err.text() };
};

/** Key prefixes of the cached nodes of a stage, as REFs for inspect. */
const refsOf = (stage: string) => manifests.filter((m) => m.stage === stage).map((m) => m.key.slice(0, 12));

/** The stderr lines that are not the view listing. */
const complaints = (err: string) => err.split("\n").filter((line) => line !== "" && !line.startsWith("view "));

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "sql-readonly-"));
  cacheDir = join(work, "cache");
  writeFileSync(join(work, "a.txt"), "1 2 3");
  writeFileSync(join(work, "b.txt"), "4 5");
  writeFileSync(join(work, "behaviour.json"), JSON.stringify({ failOn: [], sleepMs: 0 }));
  // Two configurations: power nodes for a and b with power 2 and with power 3 (four cached power nodes).
  expect((await cli(["run", "all"])).code).toBe(0);
  expect((await cli(["run", "all", "--set", "power=3"])).code).toBe(0);
  const store = await ArtifactStore.open(cacheDir);
  manifests = (await store.list()).manifests;
  objectDir = (key) => store.artifactDir(key);
  entryPath = (key) => store.entryPath(key);
  expect(refsOf("power")).toHaveLength(4);
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("inspect --sql refuses what could touch anything outside the selected artifacts", () => {
  const refused = async (sql: string, refs = refsOf("source")) => {
    const r = await cli(["inspect", ...refs, "--sql", sql]);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    const lines = complaints(r.err);
    expect(lines).toHaveLength(1);
    return lines[0]!;
  };

  it("COPY TO a path outside: no file is written", async () => {
    const target = join(work, "copied.csv");
    expect(await refused(`COPY (SELECT * FROM source_a_numbers) TO '${target}'`)).toBe(
      "pipeline: --sql is read-only: COPY statements are refused (only SELECT queries run)",
    );
    expect(existsSync(target)).toBe(false);
  });

  it("COPY TO a selected artifact's own file (which DuckDB alone would allow): the artifact is unchanged", async () => {
    const source = manifests.find((m) => m.nodeId === "source[a]")!;
    const file = join(objectDir(source.key), source.artifacts.numbers!.file);
    const before = readFileSync(file);
    const sql = `COPY (SELECT 99 AS i, 0.5 AS x) TO '${file}' (FORMAT parquet, USE_TMP_FILE false)`;
    expect(await refused(sql)).toBe(
      "pipeline: --sql is read-only: COPY statements are refused (only SELECT queries run)",
    );
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it("reading a file outside the artifacts, even one beside them", async () => {
    const secret = join(work, "secret.csv");
    writeFileSync(secret, "password\nhunter2\n");
    expect(await refused(`SELECT * FROM read_csv('${secret}')`)).toBe(
      `pipeline: --sql reads only the selected artifacts' views: "${secret}" is outside them`,
    );
    const source = manifests.find((m) => m.nodeId === "source[a]")!;
    const manifestFile = entryPath(source.key);
    expect(existsSync(manifestFile)).toBe(true);
    expect(await refused(`SELECT * FROM read_text('${manifestFile}')`)).toContain("is outside them");
    // an artifact of a node that was not selected
    const other = manifests.find((m) => m.stage === "power")!;
    const otherFile = join(objectDir(other.key), other.artifacts.powers!.file);
    expect(await refused(`SELECT * FROM read_parquet('${otherFile}')`)).toContain("is outside them");
  });

  it("ATTACH: no database file is created", async () => {
    const db = join(work, "attached.db");
    expect(await refused(`ATTACH '${db}' AS other`)).toBe(
      "pipeline: --sql is read-only: ATTACH statements are refused (only SELECT queries run)",
    );
    expect(existsSync(db)).toBe(false);
  });

  it("EXPORT DATABASE: no folder is created", async () => {
    const folder = join(work, "exported");
    expect(await refused(`EXPORT DATABASE '${folder}'`)).toBe(
      "pipeline: --sql is read-only: EXPORT statements are refused (only SELECT queries run)",
    );
    expect(existsSync(folder)).toBe(false);
  });

  it("INSTALL and LOAD", async () => {
    const message = "pipeline: --sql is read-only: INSTALL/LOAD statements are refused (only SELECT queries run)";
    expect(await refused("INSTALL httpfs")).toBe(message);
    expect(await refused("LOAD json")).toBe(message);
  });

  it("writes, even to the throwaway database: CREATE, INSERT, DROP, and a write after a SELECT", async () => {
    expect(await refused("CREATE TABLE t AS SELECT 1 AS a")).toBe(
      "pipeline: --sql is read-only: CREATE statements are refused (only SELECT queries run)",
    );
    expect(await refused("INSERT INTO source_a_numbers VALUES (7, 7.0)")).toBe(
      "pipeline: --sql is read-only: INSERT statements are refused (only SELECT queries run)",
    );
    expect(await refused("DROP VIEW source_a_numbers")).toBe(
      "pipeline: --sql is read-only: DROP statements are refused (only SELECT queries run)",
    );
    expect(await refused("SELECT 1; CREATE TABLE t AS SELECT 1 AS a")).toBe(
      "pipeline: --sql is read-only: CREATE statements are refused (only SELECT queries run)",
    );
  });

  it("SET and PRAGMA that would turn access back on", async () => {
    const message = "pipeline: --sql is read-only: SET/RESET statements are refused (only SELECT queries run)";
    expect(await refused("SET enable_external_access = true")).toBe(message);
    expect(await refused("RESET lock_configuration")).toBe(message);
    expect(await refused("PRAGMA enable_profiling")).toBe(
      "pipeline: --sql is read-only: PRAGMA statements are refused (only SELECT queries run)",
    );
  });

  it("an ordinary SELECT still runs, in every format, with the views listed on stderr", async () => {
    const sql = "SELECT count(*) AS n, sum(x) AS s FROM source_a_numbers";
    const table = await cli(["inspect", ...refsOf("source"), "--sql", sql]);
    expect(table.code).toBe(0);
    expect(table.err).toContain("view source_a_numbers: source[a] numbers\n");
    expect(table.out.split("\n").at(-2)).toBe("(1 row)");
    const csv = await cli(["inspect", ...refsOf("source"), "--sql", sql, "--format", "csv"]);
    expect(csv.out).toBe("n,s\n3,6\n");
    const json = await cli(["inspect", ...refsOf("source"), "--sql", sql, "--format", "json"]);
    expect(JSON.parse(json.out)).toEqual([{ n: 3, s: 6 }]);
  });
});

describe("stage views across nodes", () => {
  it("unites every selected power node with its parameters as columns", async () => {
    const sql = "SELECT power, name, count(*) AS n, sum(y) AS s FROM powers GROUP BY ALL ORDER BY ALL";
    const r = await cli(["inspect", ...refsOf("power"), "--sql", sql, "--format", "json"]);
    expect(r.code).toBe(0);
    expect(r.err).toContain("view powers: power powers of 4 nodes, columns name, power\n");
    expect(JSON.parse(r.out)).toEqual([
      { power: 2, name: "a", n: 3, s: 1 + 4 + 9 },
      { power: 2, name: "b", n: 2, s: 16 + 25 },
      { power: 3, name: "a", n: 3, s: 1 + 8 + 27 },
      { power: 3, name: "b", n: 2, s: 64 + 125 },
    ]);
    const columns = await cli([
      "inspect",
      ...refsOf("power"),
      "--sql",
      "SELECT * FROM powers LIMIT 0",
      "--format",
      "csv",
    ]);
    expect(columns.out).toBe("name,power,i,y\n");
    const count = await cli(["inspect", ...refsOf("power"), "--sql", "SELECT count(*) AS n FROM powers", "--json"]);
    expect(JSON.parse(count.out)).toEqual([{ n: 10 }]);
  });

  it("keeps the per-node views, and a single node gets no stage view", async () => {
    const one = refsOf("source").slice(0, 1);
    const r = await cli(["inspect", ...one, "--sql", "SELECT count(*) AS n FROM numbers", "--format", "csv"]);
    expect(r.code).toBe(0);
    expect(r.err.split("\n").filter((l) => l.startsWith("view "))).toHaveLength(1);
    const both = await cli([
      "inspect",
      ...refsOf("source"),
      "--sql",
      "SELECT (SELECT count(*) FROM source_b_numbers) AS b, (SELECT count(*) FROM numbers WHERE name = 'b') AS also_b",
      "--format",
      "csv",
    ]);
    expect(both.out).toBe("b,also_b\n2,2\n");
  });

  it("leaves out a parameter named like a table column (case-insensitively) and unites the nodes' parameters", () => {
    const view = (node: string, params: unknown) => ({
      name: node,
      path: "/x",
      node,
      stage: "s",
      artifact: "t",
      params,
      columns: ["L", "y"],
    });
    const [v] = stageViews([view("s_a_t", { l: 1, seed: 0 }), view("s_b_t", { seed: 1, depth: { x: 1 } })]);
    expect(v!.name).toBe("t");
    expect(v!.parameters).toEqual(["seed", "depth"]);
  });
});
