import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Schema } from "effect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ArtifactStore } from "../cache/store.ts";
import { main } from "../pipeline/cli.ts";
import type { PipelineDefinition } from "../pipeline/definition.ts";
import { writeParquet } from "../pipeline/parquet.ts";
import type { LockFile } from "../pipeline/replay/lockfile.ts";
import { diffParquet } from "../pipeline/replay/parquet-diff.ts";
import { defineStage, dependOn, StageIO } from "../pipeline/stage.ts";
import { Double, Int32, Int64, table, Utf8, volatileTable } from "../pipeline/table.ts";
import { fakePipeline, fakeStages, runCounts, total, type FakeConfig, type FakeEnv } from "./fixtures/fake-pipeline.ts";
import { capture } from "./fixtures/capture.ts";

let dir: string;
let cacheDir: string;

/** Runs the CLI in-process with --cache-dir; returns exit code, stdout and stderr. */
const cli = async (definition: PipelineDefinition<FakeConfig, FakeEnv>, command: string, ...args: string[]) => {
  const out = capture();
  const err = capture();
  const code = await main(definition, [command, "--cache-dir", cacheDir, ...args], {
    out: out.stream,
    err: err.stream,
  });
  return { code, out: out.text(), err: err.text() };
};

const fake = (...args: string[]) => cli(fakePipeline(dir), args[0]!, ...args.slice(1));

/** Status per node id from replay's table (first line of each node). */
const tableStatuses = (out: string): Record<string, string> =>
  Object.fromEntries(
    out
      .split("\n")
      .map((line) => /^ {2}(match|MISMATCH|no reference|failed)\s+(\S+)/.exec(line))
      .filter((m) => m !== null)
      .map((m) => [m[2]!, m[1]!]),
  );

interface ReplayJson {
  ok: boolean;
  replayCache: string | null;
  nodes: Array<{
    id: string;
    status: string;
    key: string | null;
    referenceKey: string | null;
    differences: Array<{ artifact: string | null; detail: string }>;
  }>;
}

const readLock = (file: string) => JSON.parse(readFileSync(file, "utf8")) as LockFile;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "replay-"));
  cacheDir = join(dir, "cache");
  writeFileSync(join(dir, "a.txt"), "1 2 3");
  writeFileSync(join(dir, "b.txt"), "4 5");
  writeFileSync(join(dir, "behaviour.json"), JSON.stringify({ failOn: [], sleepMs: 0 }));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("pipeline lock", () => {
  it("pins every node's key and artifact hashes in deterministic, sorted JSON", async () => {
    const run = await fake("run", "all", "--json");
    expect(run.code).toBe(0);
    const ran = JSON.parse(run.out) as {
      nodes: Array<{ id: string; key: string; artifacts: Record<string, { sha256: string }> }>;
    };
    const lockFile = join(dir, "pipeline.lock.json");
    const locked = await fake("lock", "all", "--out", lockFile);
    expect(locked.code, locked.err).toBe(0);
    const first = readFileSync(lockFile, "utf8");
    expect((await fake("lock", "all", "--out", lockFile)).code).toBe(0);
    expect(readFileSync(lockFile, "utf8")).toBe(first);
    expect(first.endsWith("}\n")).toBe(true);
    expect(first).toContain('\n  "configSources": {\n'); // 2-space indentation

    const lock = readLock(lockFile);
    expect(Object.keys(lock)).toEqual(["configSources", "formatVersion", "nodes", "target", "tool"]);
    expect(Object.keys(lock.nodes)).toEqual([...Object.keys(lock.nodes)].sort());
    expect(lock.target).toBe("all");
    expect(lock.configSources).toEqual({ preset: null, config: null, set: [], options: {} });
    for (const n of ran.nodes) {
      expect(lock.nodes[n.id]!.key).toBe(n.key);
      expect(lock.nodes[n.id]!.artifacts).toEqual(
        Object.fromEntries(Object.entries(n.artifacts).map(([name, a]) => [name, a.sha256])),
      );
    }
    expect(lock.nodes["total[all]"]!.stage).toBe("total");
    expect(Object.keys(lock.nodes["total[all]"]!.artifacts).sort()).toEqual(["note", "total"]);
  });

  it("refuses a target that is not fully cached, in one line", async () => {
    await fake("run", "power[a]");
    const r = await fake("lock", "all", "--out", join(dir, "lock.json"));
    expect(r.code).toBe(2);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toMatch(/3 of 5 nodes of all are not cached \(first: source\[b\]\); run `pipeline run all`/);
    expect(existsSync(join(dir, "lock.json"))).toBe(false);
  });
});

describe("pipeline replay --check", () => {
  it("recomputes from scratch in a temporary cache and matches the lock", async () => {
    await fake("run", "all");
    const lockFile = join(dir, "lock.json");
    await fake("lock", "all", "--out", lockFile);
    const r = await fake("replay", "--check", "--lock", lockFile);
    expect(r.code, r.out + r.err).toBe(0);
    expect(tableStatuses(r.out)).toEqual({
      "source[a]": "match",
      "source[b]": "match",
      "power[a]": "match",
      "power[b]": "match",
      "total[all]": "match",
    });
    expect(r.out).toMatch(/5 match, 0 mismatch, 0 no reference, 0 failed/);
    // Every node really ran again, in a cache that is gone afterwards.
    expect(Object.values(runCounts(dir))).toEqual([2, 2, 2, 2, 2]);
    const replayCache = /recomputing 5 nodes in (\S+)/.exec(r.err)![1]!;
    expect(replayCache.startsWith(cacheDir)).toBe(false);
    expect(existsSync(replayCache)).toBe(false);
  });

  it("without --lock, finds a flipped byte in a cached table and names the first differing value", async () => {
    await fake("run", "all");
    const store = await ArtifactStore.open(cacheDir);
    const manifest = (await store.list()).manifests.find((m) => m.nodeId === "power[b]")!;
    const file = store.blobPath(manifest.artifacts.powers!.sha256);
    chmodSync(file, 0o644); // blobs are read-only
    // power[b] holds y = 16, 25; flip the lowest byte of the plain-encoded 25 in the data page.
    const bytes = readFileSync(file);
    const values = Buffer.alloc(16);
    values.writeDoubleLE(16, 0);
    values.writeDoubleLE(25, 8);
    const at = bytes.indexOf(values);
    expect(at).toBeGreaterThan(0);
    bytes.writeUInt8(bytes.readUInt8(at + 8) ^ 0x01, at + 8);
    writeFileSync(file, bytes);
    const corrupted = bytes.readDoubleLE(at + 8);
    expect(corrupted).not.toBe(25);

    const r = await fake("replay", "all", "--check", "--json");
    expect(r.code).toBe(1);
    const result = JSON.parse(r.out) as ReplayJson;
    expect(result.ok).toBe(false);
    const byId = Object.fromEntries(result.nodes.map((n) => [n.id, n]));
    expect(Object.fromEntries(result.nodes.map((n) => [n.id, n.status]))).toEqual({
      "source[a]": "match",
      "source[b]": "match",
      "power[a]": "match",
      "power[b]": "MISMATCH",
      "total[all]": "match", // its key comes from the manifests' recorded hashes, which the flip did not touch
    });
    expect(byId["power[b]"]!.key).toBe(manifest.key);
    expect(byId["power[b]"]!.differences.map((d) => `${d.artifact}: ${d.detail}`)).toEqual([
      `powers: the cached file no longer has its manifest's sha256 ${manifest.artifacts.powers!.sha256.slice(0, 12)} (changed on disk)`,
      `powers: column y differs first at row 1 (cache ${corrupted} vs replay 25)`,
    ]);
    // The reference was only read: not quarantined, not repaired.
    expect(readFileSync(file)).toEqual(bytes);

    const table = await fake("replay", "all", "--check");
    expect(table.code).toBe(1);
    expect(table.out).toMatch(/ {2}MISMATCH\s+power\[b\]\s+powers: the cached file no longer has/);
    expect(table.out).toMatch(/\n\s+powers: column y differs first at row 1/);
  });

  it("reports a node whose artifact hash in the lock was edited, and exits 1", async () => {
    const run = await fake("run", "all", "--json");
    const realSha = (
      JSON.parse(run.out) as { nodes: Array<{ id: string; artifacts: Record<string, { sha256: string }> }> }
    ).nodes.find((n) => n.id === "power[a]")!.artifacts.powers!.sha256;
    const lockFile = join(dir, "lock.json");
    await fake("lock", "all", "--out", lockFile);
    const lock = readLock(lockFile);
    writeFileSync(
      lockFile,
      JSON.stringify({
        ...lock,
        nodes: { ...lock.nodes, "power[a]": { ...lock.nodes["power[a]"]!, artifacts: { powers: "0".repeat(64) } } },
      }),
    );
    const r = await fake("replay", "--check", "--lock", lockFile);
    expect(r.code).toBe(1);
    expect(tableStatuses(r.out)).toEqual({
      "source[a]": "match",
      "source[b]": "match",
      "power[a]": "MISMATCH",
      "power[b]": "match",
      "total[all]": "match",
    });
    expect(r.out).toContain(`powers: bytes differ (sha256 lock 000000000000 vs replay ${realSha.slice(0, 12)})`);
    expect(r.out).toMatch(/4 match, 1 mismatch/);
  });

  it("a changed parameter says the key differs and still compares the artifacts", async () => {
    await fake("run", "all");
    const lockFile = join(dir, "lock.json");
    await fake("lock", "all", "--out", lockFile);
    const r = await fake("replay", "--check", "--lock", lockFile, "--set", "power=3", "--json");
    expect(r.code).toBe(1);
    expect(r.err).toContain("overrides the lock's configuration: --set power=3");
    const nodes = Object.fromEntries((JSON.parse(r.out) as ReplayJson).nodes.map((n) => [n.id, n]));
    expect(nodes["source[a]"]!.status).toBe("match");
    expect(nodes["power[a]"]!.status).toBe("MISMATCH");
    expect(nodes["power[a]"]!.key).not.toBe(nodes["power[a]"]!.referenceKey);
    const details = (id: string) => nodes[id]!.differences.map((d) => `${d.artifact ?? "-"}: ${d.detail}`);
    expect(details("power[a]")[0]).toBe("-: key differs: configuration or code changed");
    expect(details("power[a]")[1]).toMatch(/^powers: bytes differ \(sha256 lock \w{12} vs replay \w{12}\)$/);
    expect(details("total[all]")[0]).toBe("-: key differs: an upstream artifact differs");
    expect(details("total[all]").some((d) => d.startsWith("total: bytes differ"))).toBe(true);
  });

  it("nodes missing from the current cache have no reference", async () => {
    await fake("run", "power[a]");
    const r = await fake("replay", "all", "--check");
    expect(r.code).toBe(1);
    expect(tableStatuses(r.out)).toEqual({
      "source[a]": "match",
      "power[a]": "match",
      "source[b]": "no reference",
      "power[b]": "no reference",
      "total[all]": "no reference",
    });
  });

  it("a failing node is reported as failed, its dependents too", async () => {
    await fake("run", "all");
    writeFileSync(join(dir, "behaviour.json"), JSON.stringify({ failOn: ["b"], sleepMs: 0 }));
    const r = await fake("replay", "all", "--check");
    expect(r.code).toBe(1);
    expect(tableStatuses(r.out)).toMatchObject({ "power[a]": "match", "power[b]": "failed", "total[all]": "failed" });
    expect(r.out).toContain("refusing to process b");
    expect(r.out).toContain("not run: upstream power[b] failed");
  });

  it("user mistakes end in one line and exit code 2", async () => {
    await fake("run", "all");
    writeFileSync(join(dir, "broken.json"), "{ not json");
    writeFileSync(
      join(dir, "badkey.json"),
      JSON.stringify({
        formatVersion: 1,
        tool: { name: "x", version: "1" },
        target: "all",
        configSources: { preset: null, config: null, set: [], options: {} },
        nodes: { "a[b]": { stage: "a", key: "xyz", artifacts: {} } },
      }),
    );
    const cases: Array<[string[], RegExp]> = [
      [["replay", "--check", "--lock", join(dir, "nosuch.json")], /cannot read lock file .*nosuch\.json/],
      [["replay", "--check", "--lock", join(dir, "broken.json")], /lock file .*broken\.json is not valid JSON/],
      [
        ["replay", "--check", "--lock", join(dir, "badkey.json")],
        /malformed lock file .*badkey\.json: nodes\.a\[b\]\.key: expected 64 lowercase hex digits/,
      ],
      [["replay", "all"], /replay needs --check/],
      [["replay", "--check"], /replay needs a TARGET, or --lock FILE/],
      [["replay", "nosuch", "--check"], /unknown target "nosuch"/],
      [["replay", "all", "--check", "--jobs", "0"], /--jobs expects a positive integer/],
      [["lock"], /lock needs a TARGET/],
      [["lock", "nosuch"], /unknown target "nosuch"/],
      [["lock", "all", "--set", "power=9"], /invalid configuration: power/],
      [["lock", "all", "--out", join(dir, "no", "such", "dir", "lock.json")], /cannot write lock file/],
    ];
    for (const [args, pattern] of cases) {
      const r = await fake(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err.trim().split("\n"), args.join(" ")).toHaveLength(1);
      expect(r.err).toMatch(pattern);
    }
  });
});

/** A stage below total with a stable table and a volatile one whose bytes change on every run. */
const clock = defineStage({
  name: "clock",
  version: "1",
  description: "total again, plus a wall-clock reading",
  params: Schema.Struct({}),
  resources: "cpu",
  instances: () => [{}],
  inputs: () => ({ total: dependOn(total, {}) }),
  label: () => "all",
  outputs: {
    stable: table("the total", Schema.Struct({ total: Double })),
    timing: volatileTable("when it ran", Schema.Struct({ at: Double })),
  },
  run: () =>
    Effect.gen(function* () {
      const io = yield* StageIO;
      const rows = yield* io.readTable("total", "total");
      yield* io.writeTable("stable", [{ total: rows[0]!.total }]);
      yield* io.writeTable("timing", [{ at: performance.now() + Math.random() }]);
    }),
});

/**
 * The fake pipeline plus `clock`, an option that changes the configuration (--only) and an environment one
 * (--data-dir).
 */
const extendedPipeline = (): PipelineDefinition<FakeConfig, FakeEnv> => ({
  ...fakePipeline(dir),
  stages: [...fakeStages, clock],
  options: [
    { name: "only", description: "process one name" },
    { name: "data-dir", description: "where data lives (environment)", env: "REPLAY_TEST_DATA_DIR" },
  ],
  configure: (encoded, options) => (options.only === undefined ? encoded : { ...encoded, names: [options.only] }),
});

describe("locks of a richer pipeline", () => {
  it("inline the config file, keep only configuration flags, leave volatile artifacts out and ignore them on replay", async () => {
    const definition = extendedPipeline();
    const configFile = join(dir, "config.json");
    writeFileSync(configFile, JSON.stringify({ power: 3 }));
    const flags = ["--config", configFile, "--only", "b", "--data-dir", "/somewhere", "--set", "sleepMs=0"];
    expect((await cli(definition, "run", "all", ...flags)).code).toBe(0);
    const lockFile = join(dir, "lock.json");
    const locked = await cli(definition, "lock", "clock", ...flags, "--out", lockFile);
    expect(locked.code, locked.err).toBe(0);
    const lock = readLock(lockFile);
    expect(lock.configSources).toEqual({
      preset: null,
      config: { power: 3 },
      set: ["sleepMs=0"],
      options: { only: "b" },
    });
    expect(Object.keys(lock.nodes).sort()).toEqual(["clock[all]", "power[b]", "source[b]", "total[all]"]);
    expect(Object.keys(lock.nodes["clock[all]"]!.artifacts)).toEqual(["stable"]);

    rmSync(configFile); // the lock holds its contents
    const r = await cli(definition, "replay", "--check", "--lock", lockFile, "--keep", "--json");
    expect(r.code, r.out + r.err).toBe(0);
    const result = JSON.parse(r.out) as ReplayJson;
    expect(result.nodes.map((n) => n.status)).toEqual(["match", "match", "match", "match"]);
    // The volatile table really differs between the two runs; it is just not compared.
    const replayStore = await ArtifactStore.open(result.replayCache!);
    const cacheStore = await ArtifactStore.open(cacheDir);
    const clockKey = lock.nodes["clock[all]"]!.key;
    const timingSha = async (store: ArtifactStore) => (await store.manifest(clockKey))!.artifacts.timing!.sha256;
    expect(await timingSha(replayStore)).not.toBe(await timingSha(cacheStore));
    expect(r.err).toContain(`kept the replay cache at ${result.replayCache}`);
    rmSync(join(result.replayCache!, ".."), { recursive: true, force: true });

    // Without --lock, the cache is the reference; volatile artifacts are not compared there either.
    const again = await cli(
      definition,
      "replay",
      "clock",
      "--check",
      ...flags.filter((f) => f !== configFile && f !== "--config"),
      "--set",
      "power=3",
    );
    expect(again.code, again.out + again.err).toBe(0);
  });
});

describe("diffParquet", () => {
  const spec = table("t", Schema.Struct({ i: Int32, y: Double, name: Schema.NullOr(Utf8) }));
  const write = async (name: string, rows: Array<{ i: number; y: number; name?: string | null }>) => {
    const path = join(dir, name);
    await writeParquet(path, spec, rows);
    return path;
  };
  const base = [
    { i: 0, y: 1.5, name: "a" },
    { i: 1, y: 2.5, name: null },
    { i: 2, y: 9, name: "c" },
  ];

  it("finds nothing in equal tables and names the first differing column, row and values", async () => {
    const a = await write("a.parquet", base);
    expect(await diffParquet(a, await write("same.parquet", base))).toBeUndefined();
    const y = await write("y.parquet", [base[0]!, base[1]!, { ...base[2]!, y: 10 }]);
    expect(await diffParquet(a, y)).toBe("column y differs first at row 2 (9 vs 10)");
    expect(await diffParquet(a, y, ["lock", "replay"])).toBe("column y differs first at row 2 (lock 9 vs replay 10)");
    // Column by column in schema order: i differs later than y, but i comes first.
    const both = await write("both.parquet", [{ ...base[0]!, y: 0 }, base[1]!, { ...base[2]!, i: 7 }]);
    expect(await diffParquet(a, both)).toBe("column i differs first at row 2 (2 vs 7)");
    const nulls = await write("nulls.parquet", [base[0]!, { ...base[1]!, name: "b" }, base[2]!]);
    expect(await diffParquet(a, nulls)).toBe('column name differs first at row 1 (null vs "b")');
  });

  it("reports row counts and schemas", async () => {
    const a = await write("a.parquet", base);
    expect(await diffParquet(a, await write("longer.parquet", [...base, { i: 3, y: 0 }]))).toBe("row count 3 vs 4");
    const other = join(dir, "other.parquet");
    await writeParquet(other, table("t", Schema.Struct({ i: Int64, y: Double, name: Schema.NullOr(Utf8) })), base);
    expect(await diffParquet(a, other)).toBe(
      "schema differs (i INT32, y DOUBLE, name UTF8? vs i INT64, y DOUBLE, name UTF8?)",
    );
  });
});
