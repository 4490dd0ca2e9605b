import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { chmod, open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { it as effectIt } from "@effect/vitest";
import { Deferred, Effect, Fiber, Layer, TestClock } from "effect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Store } from "../cache/service.ts";
import { ArtifactStore } from "../cache/store.ts";
import { main } from "../pipeline/cli.ts";
import { ConfigError, loadConfig } from "../pipeline/config.ts";
import { executeDag, type NodeResult } from "../pipeline/executor/dag.ts";
import { buildDag, GraphError } from "../pipeline/graph.ts";
import { canonicalJson, hashValue } from "../pipeline/hash.ts";
import { makeReporter } from "../pipeline/progress.ts";
import { FakeEnv, fakePipeline, runCounts, type FakeConfig } from "./fixtures/fake-pipeline.ts";
import { capture } from "./fixtures/capture.ts";

const repoRoot = resolve(import.meta.dirname, "..");

let dir: string;
let cacheDir: string;

/** Runs the CLI in-process; returns exit code, stdout and stderr. */
const cli = async (...args: string[]) => {
  const out = capture();
  const err = capture();
  const code = await main(fakePipeline(dir), reorder(args), {
    out: out.stream,
    err: err.stream,
  });
  return { code, out: out.text(), err: err.text() };
};
/** Puts the command first, then the cache dir. */
const reorder = (args: string[]) => [args[0]!, "--cache-dir", cacheDir, ...args.slice(1)];

const runJson = async (...args: string[]) => {
  const r = await cli("run", ...args, "--json");
  return { ...r, summary: JSON.parse(r.out) as { nodes: Array<{ id: string; status: string; key: string }> } };
};

const statusOf = (summary: { nodes: Array<{ id: string; status: string }> }) =>
  Object.fromEntries(summary.nodes.map((n) => [n.id, n.status]));

const setBehaviour = (b: { failOn?: string[]; sleepMs?: number }) =>
  writeFileSync(join(dir, "behaviour.json"), JSON.stringify({ failOn: b.failOn ?? [], sleepMs: b.sleepMs ?? 0 }));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "engine-"));
  cacheDir = join(dir, "cache");
  writeFileSync(join(dir, "a.txt"), "1 2 3");
  writeFileSync(join(dir, "b.txt"), "4 5");
  writeFileSync(join(dir, "c.txt"), "6");
  setBehaviour({});
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("hashing", () => {
  it("canonical JSON ignores key order and rejects values JSON cannot represent", () => {
    expect(canonicalJson({ b: 1, a: [1, { d: 2, c: 3 }] })).toBe('{"a":[1,{"c":3,"d":2}],"b":1}');
    expect(hashValue({ x: 1, y: 2 })).toBe(hashValue({ y: 2, x: 1 }));
    expect(hashValue({ x: 1 })).not.toBe(hashValue({ x: 1.0000001 }));
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(/non-finite/);
  });

  it("node keys are stable across processes and runs", async () => {
    const first = await runJson("all");
    rmSync(cacheDir, { recursive: true });
    const second = await runJson("all");
    expect(second.summary.nodes.map((n) => n.key)).toEqual(first.summary.nodes.map((n) => n.key));
    expect(new Set(first.summary.nodes.map((n) => n.key)).size).toBe(first.summary.nodes.length);
  });
});

describe("invalidation", () => {
  it("a second run reuses everything", async () => {
    const first = await runJson("all");
    expect(first.code).toBe(0);
    expect(Object.values(statusOf(first.summary))).toEqual(Array(5).fill("ran"));
    const second = await runJson("all");
    expect(Object.values(statusOf(second.summary))).toEqual(Array(5).fill("cached"));
    expect(runCounts(dir)).toEqual({ "source[a]": 1, "source[b]": 1, "power[a]": 1, "power[b]": 1, "total[all]": 1 });
  });

  it("changing one input byte reruns exactly the nodes below it", async () => {
    await runJson("all");
    writeFileSync(join(dir, "a.txt"), "1 2 4");
    const again = await runJson("all", "--force", "source");
    expect(statusOf(again.summary)).toEqual({
      "source[a]": "ran",
      "source[b]": "ran",
      "power[a]": "ran",
      "power[b]": "cached", // same bytes from source[b]: early cutoff
      "total[all]": "ran",
    });
    const total = (await cli("inspect", "total[all]", "--json")).out;
    expect(JSON.parse(total).firstRows.total[0].total).toBe(1 + 4 + 16 + 16 + 25);
  });

  it("changing one parameter reruns the nodes that depend on it, and says why", async () => {
    await runJson("all");
    const dry = await cli("run", "all", "--set", "power=3", "--dry-run");
    expect(dry.code).toBe(0);
    expect(dry.err).toMatch(/run\s+power\[a\]\s+parameter changed: power 2 -> 3/);
    expect(dry.err).toMatch(/pending\s+total\[all\]\s+upstream power\[a\] will run/);
    expect(dry.err).toMatch(/cached\s+source\[a\]/);
    expect(runCounts(dir)["power[a]"]).toBe(1); // dry run ran nothing
    const again = await runJson("all", "--set", "power=3");
    expect(statusOf(again.summary)).toEqual({
      "source[a]": "cached",
      "source[b]": "cached",
      "power[a]": "ran",
      "power[b]": "ran",
      "total[all]": "ran",
    });
  });

  it("adding a node runs only what is new", async () => {
    await runJson("all");
    const again = await runJson("all", "--preset", "three");
    expect(statusOf(again.summary)).toMatchObject({
      "source[c]": "ran",
      "power[c]": "ran",
      "total[all]": "ran",
      "power[a]": "cached",
    });
  });

  it("--out copies the target's artifacts", async () => {
    const out = join(dir, "out");
    const r = await cli("run", "total", "--out", out);
    expect(r.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(["note", "total.parquet"]);
    expect(readFileSync(join(out, "note"), "utf8")).toBe(`sum=${1 + 4 + 9 + 16 + 25}\n`);
  });

  it("a target runs only its upstream nodes", async () => {
    const r = await runJson("power");
    expect(Object.keys(statusOf(r.summary)).sort()).toEqual(["power[a]", "power[b]", "source[a]", "source[b]"]);
    const one = await runJson("power[a]");
    expect(Object.keys(statusOf(one.summary)).sort()).toEqual(["power[a]", "source[a]"]);
  });
});

describe("planner", () => {
  it("orders nodes inputs first", () => {
    const { config } = loadConfig(fakePipeline(dir), { preset: "three" });
    const dag = buildDag(fakePipeline(dir).stages, config, "all");
    const pos = new Map(dag.order.map((id, i) => [id, i]));
    for (const id of dag.order) {
      for (const dep of Object.values(dag.nodes.get(id)!.deps)) expect(pos.get(dep)!).toBeLessThan(pos.get(id)!);
    }
    expect(dag.order.at(-1)).toBe("total[all]");
  });

  it("dry run lists what would run and writes nothing", async () => {
    const r = await cli("run", "all", "--dry-run");
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/5 nodes, 0 cached, 2 to run, 3 pending/);
    expect(runCounts(dir)).toEqual({});
    const store = await ArtifactStore.open(cacheDir);
    expect((await store.list()).manifests).toEqual([]);
  });

  it("dag prints text, mermaid and dot", async () => {
    const text = await cli("dag", "all");
    expect(text.out).toContain("power[a] <- source[a]");
    expect(text.out).toContain("total[all] <- power[a], power[b]");
    expect((await cli("dag", "all", "--format", "mermaid")).out).toMatch(/^graph LR/);
    expect((await cli("dag", "all", "--format", "dot")).out).toMatch(/^digraph pipeline/);
    expect((await cli("dag", "all", "--format", "png")).code).toBe(2);
  });
});

describe("failures", () => {
  it("a failing node fails only its dependents; independent branches finish", async () => {
    setBehaviour({ failOn: ["a"] });
    const r = await runJson("all", "--jobs", "2");
    expect(r.code).toBe(1);
    expect(statusOf(r.summary)).toEqual({
      "source[a]": "ran",
      "source[b]": "ran",
      "power[a]": "failed",
      "power[b]": "ran",
      "total[all]": "skipped",
    });
    expect(r.err).toMatch(/FAILED\s+power\[a\]: refusing to process a/);
    expect(r.err).toMatch(/skipped\s+total\[all\]: upstream power\[a\] failed/);
    setBehaviour({});
    const fixed = await runJson("all");
    expect(statusOf(fixed.summary)).toMatchObject({ "power[a]": "ran", "power[b]": "cached", "total[all]": "ran" });
  });

  it("user mistakes end in one line and exit code 2", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["run"], /run needs a TARGET/],
      [["run", "nosuch"], /unknown target "nosuch"/],
      [["run", "all", "--set", "power=9"], /invalid configuration: power: .*between 1 and 4/i],
      [["run", "all", "--set", "names=3"], /invalid configuration: names/],
      [["run", "all", "--set", "colour=red"], /invalid configuration: colour/],
      [["run", "all", "--jobs", "0"], /--jobs expects a positive integer/],
      [["run", "all", "--bogus"], /unknown option "--bogus" for run/],
      [["run", "all", "--preset", "nine"], /unknown preset "nine"/],
      [["run", "all", "--force", "nosuch"], /--force: unknown stage/],
      [["frobnicate"], /unknown command "frobnicate"/],
    ];
    for (const [args, pattern] of cases) {
      const r = await cli(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err.trim().split("\n")).toHaveLength(1);
      expect(r.err).toMatch(pattern);
    }
  });

  it("bad parameters in a dependency are a GraphError", () => {
    expect(() => loadConfig(fakePipeline(dir), { assignments: ["power=0"] })).toThrow(ConfigError);
    const stages = fakePipeline(dir).stages;
    const broken = { ...stages[1]!, inputs: () => ({ numbers: { stage: "source", params: { name: 5 } } }) };
    const config: FakeConfig = { names: ["a"], power: 2, failOn: [], sleepMs: 0 };
    expect(() => buildDag([stages[0]!, broken], config, "power")).toThrow(GraphError);
  });
});

describe("cache integrity", () => {
  it("a corrupted artifact is detected, reported and recomputed", async () => {
    await runJson("all");
    const store = await ArtifactStore.open(cacheDir);
    const m = (await store.list()).manifests.find((x) => x.nodeId === "power[b]")!;
    const file = store.blobPath(m.artifacts.powers!.sha256);
    await chmod(file, 0o644); // blobs are read-only
    const fh = await open(file, "r+");
    const { size } = await fh.stat();
    const buf = Buffer.alloc(1);
    await fh.read(buf, 0, 1, Math.floor(size / 2));
    buf[0] = buf[0]! ^ 0xff;
    await fh.write(buf, 0, 1, Math.floor(size / 2));
    await fh.close();
    const r = await runJson("all");
    expect(r.err).toMatch(/corrupt\s+power\[b\]/);
    expect(statusOf(r.summary)["power[b]"]).toBe("ran");
    expect(statusOf(r.summary)["total[all]"]).toBe("cached"); // recomputed bytes are identical
    expect(runCounts(dir)["power[b]"]).toBe(2);
  });

  // Under the TestClock the power nodes' sleeps never end, so the interruption lands while both are running.
  effectIt.effect("interrupting a run leaves no partial artifact and releases the locks", () =>
    Effect.gen(function* () {
      setBehaviour({ sleepMs: 5_000 });
      const store = yield* Effect.promise(() => ArtifactStore.open(cacheDir));
      const pipeline = fakePipeline(dir);
      const { config } = loadConfig(pipeline, {});
      const dag = buildDag(pipeline.stages, config, "all");
      const bothStarted = yield* Deferred.make<void>();
      let started = 0;
      const fiber = yield* Effect.fork(
        executeDag(dag, Layer.succeed(FakeEnv, { dir }), {
          jobs: 2,
          gpus: 1,
          tool: { name: "t", version: "0" },
          onEvent: (e) => {
            if (e.type === "start" && e.id.startsWith("power") && ++started === 2)
              Deferred.unsafeDone(bothStarted, Effect.void);
          },
        }).pipe(Effect.provide(Store.from(store))),
      );
      yield* Deferred.await(bothStarted);
      yield* TestClock.adjust("1 second"); // well short of the nodes' 5 s
      yield* Fiber.interrupt(fiber);
      const { manifests } = yield* Effect.promise(() => store.list());
      expect(manifests.map((m) => m.nodeId).sort()).toEqual(["source[a]", "source[b]"]);
      expect(readdirSync(store.paths.tmp)).toEqual([]);
      expect(readdirSync(store.paths.locks)).toEqual([]);
      setBehaviour({});
      const resumed = yield* Effect.promise(() => runJson("all"));
      expect(statusOf(resumed.summary)).toMatchObject({
        "source[a]": "cached",
        "power[a]": "ran",
        "total[all]": "ran",
      });
    }),
  );
});

/** A fake-cli.ts child process whose output lines a test can wait for; a wait that times out fails the test. */
const spawnCli = (args: string[], env: Record<string, string> = {}) => {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "test/fixtures/fake-cli.ts", ...args, "--cache-dir", cacheDir],
    {
      cwd: repoRoot,
      env: { ...process.env, FAKE_DIR: dir, ...env },
    },
  );
  let out = "";
  let err = "";
  const listeners = new Set<() => void>();
  const notify = () => listeners.forEach((listener) => listener());
  child.stdout.on("data", (d) => ((out += d), notify()));
  child.stderr.on("data", (d) => ((err += d), notify()));
  const exited = new Promise<number | null>((done) => child.on("close", (code) => (notify(), done(code))));
  /**
   * Resolves with the first stderr line matching `pattern`; rejects after `timeoutMs` or when the child exits first.
   */
  const waitFor = (pattern: RegExp, timeoutMs = 60_000) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => finish(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${err}`)),
        timeoutMs,
      );
      const finish = (error?: Error, line?: string) => {
        clearTimeout(timer);
        listeners.delete(check);
        if (error) reject(error);
        else resolve(line!);
      };
      const check = () => {
        const line = err.split("\n").find((l) => pattern.test(l));
        if (line !== undefined) finish(undefined, line);
        else if (child.exitCode !== null)
          finish(new Error(`exited (${child.exitCode}) before printing ${pattern}:\n${err}`));
      };
      listeners.add(check);
      check();
    });
  return { child, waitFor, exited, out: () => out, err: () => err };
};

describe("concurrency", () => {
  it("two runs on one cache compute each node once", async () => {
    setBehaviour({ sleepMs: 400 });
    const [a, b] = await Promise.all([runJson("all"), runJson("all")]);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(runCounts(dir)).toEqual({ "source[a]": 1, "source[b]": 1, "power[a]": 1, "power[b]": 1, "total[all]": 1 });
    expect(a.summary.nodes.map((n) => n.key)).toEqual(b.summary.nodes.map((n) => n.key));
  });

  it("two processes on one cache compute each node once: the second waits for the first's lock", async () => {
    const gate = join(dir, "gate");
    const first = spawnCli(["run", "all", "--json"], { FAKE_GATE: gate });
    await first.waitFor(/^run\s+power\[a\]/); // the first holds power[a]'s lock, its node held at the gate
    const second = spawnCli(["run", "all", "--json"], { FAKE_GATE: gate });
    const waiting = await second.waitFor(/^waiting\s+power\[a\]/);
    expect(waiting).toBe(`waiting  power[a]: another run (pid ${first.child.pid}) is computing it`);
    writeFileSync(gate, "");
    const [a, b] = [await first.exited, await second.exited];
    expect([a, b], first.err() + second.err()).toEqual([0, 0]);
    expect(runCounts(dir)).toEqual({ "source[a]": 1, "source[b]": 1, "power[a]": 1, "power[b]": 1, "total[all]": 1 });
    const statuses = (r: { out: () => string }) =>
      Object.fromEntries((JSON.parse(r.out()).nodes as NodeResult[]).map((n) => [n.id, n]));
    expect(Object.values(statuses(first)).map((n) => n.status)).toEqual(Array(5).fill("ran"));
    expect(statuses(second)["power[a]"]).toMatchObject({ status: "cached", reason: "made by another run" });
    expect(Object.values(statuses(second)).every((n) => n.status === "cached")).toBe(true);
  });
});

describe("crash safety", () => {
  it("kill -9 while nodes hold their locks and staging dirs, then a rerun, leaves a valid cache", async () => {
    const gate = join(dir, "gate");
    const run = spawnCli(["run", "all"], { FAKE_GATE: gate });
    // The sources are committed; both power nodes are running (locks taken, staging dirs made), held at the gate.
    await run.waitFor(/^run\s+power\[a\]/);
    await run.waitFor(/^run\s+power\[b\]/);
    run.child.kill("SIGKILL");
    await run.exited;
    const store = await ArtifactStore.open(cacheDir);
    expect((await store.list()).manifests.map((m) => m.nodeId).sort()).toEqual(["source[a]", "source[b]"]);
    for (const m of (await store.list()).manifests)
      expect((await store.lookup(m.key, { full: true })).status).toBe("hit");
    expect(readdirSync(store.paths.tmp)).toEqual([]); // open() removed the dead run's staging dirs
    expect(readdirSync(store.paths.locks)).toHaveLength(2); // left by the dead run; the rerun breaks them
    const rerun = await runJson("all");
    expect(rerun.code).toBe(0);
    expect(statusOf(rerun.summary)).toMatchObject({ "source[a]": "cached", "power[a]": "ran", "total[all]": "ran" });
    const after = await ArtifactStore.open(cacheDir);
    const manifests = (await after.list()).manifests;
    expect(manifests).toHaveLength(5);
    for (const m of manifests) expect((await after.lookup(m.key, { full: true })).status).toBe("hit");
  });
});

describe("Ctrl-C", () => {
  it("stops the running nodes, caches nothing half-written, releases the locks and exits with 130", async () => {
    const run = spawnCli(["run", "all"], { FAKE_GATE: join(dir, "gate") });
    await run.waitFor(/^run\s+power\[a\]/);
    await run.waitFor(/^run\s+power\[b\]/);
    run.child.kill("SIGINT");
    expect(await run.exited).toBe(130);
    expect(run.err()).toContain("interrupting: stopping running nodes (press Ctrl-C again to exit at once)");
    expect(run.err()).toMatch(/interrupted: nothing half-written was cached; rerun the same command to continue\n$/);
    // Looked at before any open() could clean up after it: the run itself discarded and released everything.
    expect(readdirSync(join(cacheDir, "locks"))).toEqual([]);
    expect(readdirSync(join(cacheDir, "tmp"))).toEqual([]);
    const store = await ArtifactStore.open(cacheDir);
    expect((await store.list()).manifests.map((m) => m.nodeId).sort()).toEqual(["source[a]", "source[b]"]);
  });
});

describe("progress display", () => {
  effectIt.effect("off a terminal, prints at most one progress line per node every 10 s", () =>
    Effect.gen(function* () {
      const clock = yield* Effect.clock;
      const err = capture();
      const reporter = makeReporter(err.stream, { now: () => clock.unsafeCurrentTimeMillis() });
      const progress = (fraction: number) =>
        reporter.onEvent({ type: "progress", id: "train[x]", fraction, message: "epoch" });
      reporter.onEvent({ type: "start", id: "train[x]", reason: "never run" });
      progress(0.1);
      yield* TestClock.adjust("9 seconds");
      progress(0.2);
      expect(err.text()).toBe("run      train[x]: never run\n");
      yield* TestClock.adjust("1 second");
      progress(0.3);
      progress(0.4);
      yield* TestClock.adjust("10 seconds");
      progress(0.5);
      expect(err.text().split("\n").slice(1)).toEqual([
        "  ...    train[x] 30% epoch (10.0 s, ETA 35s)",
        "  ...    train[x] 50% epoch (20.0 s, ETA 25s)",
        "",
      ]);
      reporter.close();
    }),
  );
});

describe("inspect, status and gc", () => {
  it("inspect shows the manifest, schema and first rows; status and gc reflect the configuration", async () => {
    await runJson("all");
    await runJson("all", "--preset", "three");
    const shown = await cli("inspect", "source:a", "--rows", "2");
    expect(shown.code).toBe(0);
    expect(shown.out).toContain("source[a]");
    expect(shown.out).toContain("schema: i INT32, x DOUBLE");
    expect(shown.out).toContain('{"i":0,"x":1}');
    expect(shown.out).toContain("3 rows");
    expect((await cli("inspect", "nosuch[x]")).code).toBe(2);
    const sql = await cli(
      "inspect",
      "power[a]",
      "power[b]",
      "--preset",
      "three",
      "--sql",
      "select sum(y) as s from (select y from power_a_powers union all select y from power_b_powers)",
      "--format",
      "csv",
    );
    expect(sql.code, sql.err).toBe(0);
    expect(sql.out).toBe(`s\n${1 + 4 + 9 + 16 + 25}\n`);
    const badSql = await cli("inspect", "power[a]", "--sql", "selec 1");
    expect(badSql.code).toBe(2);
    expect(badSql.err.trim().split("\n").at(-1)).toMatch(/^pipeline: Parser Error/);
    const listed = await cli("inspect", "--list");
    expect(listed.out.trim().split("\n")).toHaveLength(8);
    const status = await cli("status", "all", "--preset", "three");
    expect(status.out).toMatch(/7 cached, 0 stale/);
    const other = await cli("status", "all");
    expect(other.out).toMatch(/5 cached, 0 stale/);
    const gcDry = await cli("gc", "--dry-run");
    expect(gcDry.out).toMatch(/would remove 3 artifact/); // source[c], power[c] and the 3-name total
    expect((await cli("gc")).out).toMatch(/would remove 3 artifact.*\nnothing removed: rerun with --force/s);
    const gc = await cli("gc", "--force");
    expect(gc.out).toMatch(/removed 3 artifact/);
    expect((await runJson("all")).summary.nodes.every((n) => n.status === "cached")).toBe(true);
    expect(readFileSync(join(dir, "runs.log"), "utf8").split("\n").filter(Boolean)).toHaveLength(8);
  });
});
