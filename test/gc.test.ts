/**
 * gc that cannot destroy work (issue 10, item 3): it keeps what the current configuration, the project's lock files,
 * the last N runs and live runs reach, lists the rest by node and size, and removes it only with --force; a gc
 * during a run of another configuration (a real process) removes nothing that run needs.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runRecords } from "../pipeline/runs.ts";
import { runCounts } from "./fixtures/fake-pipeline.ts";
import { fakeCliCommand, makeFakeProject, runIn, spawnFakeCli } from "./fixtures/fake-project.ts";

const made: string[] = [];
afterEach(() => made.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));
const project = () => {
  const dir = makeFakeProject();
  made.push(dir);
  return dir;
};

/** Node id -> key of every action-cache entry in the project's cache. */
const objects = (root: string): Map<string, string[]> => {
  const dir = join(root, ".pipeline", "cache", "ac");
  const byNode = new Map<string, string[]>();
  for (const file of readdirSync(dir)) {
    const { nodeId } = JSON.parse(readFileSync(join(dir, file), "utf8")) as { nodeId: string };
    byNode.set(nodeId, [...(byNode.get(nodeId) ?? []), file.replace(/\.json$/, "")]);
  }
  return byNode;
};
const objectCount = (root: string) => readdirSync(join(root, ".pipeline", "cache", "ac")).length;

describe("gc roots", () => {
  it("keeps the current configuration, the lock files and the last N runs; removes the rest only with --force", async () => {
    const root = project();
    const cli = (...args: string[]) => runIn(root, root, ...args);
    // current: names a, b with power 2 (5 objects); locked: power 3 (3 more); runs: names [c], then names [d].
    expect((await cli("run", "all")).code).toBe(0);
    expect((await cli("run", "all", "--set", "power=3")).code).toBe(0);
    expect((await cli("lock", "all", "--set", "power=3")).code).toBe(0);
    expect((await cli("run", "all", "--set", 'names=["c"]')).code).toBe(0);
    expect((await cli("run", "all", "--set", 'names=["d"]')).code).toBe(0);
    expect(objectCount(root)).toBe(5 + 3 + 3 + 3);

    const plain = await cli("gc");
    expect(plain.code, plain.err).toBe(0);
    expect(plain.out).toContain("keeping 14 artifact(s)");
    expect(plain.out).toContain("nothing to remove\n");

    const listed = await cli("gc", "--keep-runs", "1");
    expect(listed.code, listed.err).toBe(0);
    const removable = listed.out.split("\n").filter((l) => /^ +\d[\d.]* (B|KiB) {2}\S+\[/.test(l));
    expect(removable.map((l) => l.trim().split(/ {2}/)[1])).toEqual(["power[c]", "source[c]", "total[all]"]);
    expect(listed.out).toMatch(/power\[c\] {2}power \{"name":"c","power":2\} {2}[0-9a-f]{12}/);
    expect(listed.out).toContain("nothing removed: rerun with --force to remove them\n");
    expect(listed.out).toMatch(/ 5 {2}reached by the current configuration\n/);
    expect(listed.out).toMatch(/ 5 {2}reached by lock pipeline\.lock\.json\n/);
    expect(objectCount(root)).toBe(14);

    const forced = await cli("gc", "--keep-runs", "1", "--force");
    expect(forced.code, forced.err).toBe(0);
    expect(forced.out).toMatch(/removed 3 artifact\(s\)/);
    const left = objects(root);
    expect(left.has("source[c]")).toBe(false);
    expect(left.has("power[c]")).toBe(false);
    expect(left.has("source[d]") && left.has("power[d]")).toBe(true);
    expect(left.get("total[all]")).toHaveLength(3); // current, locked, and the last run's
    expect((await cli("status")).out).toMatch(/^all: 5 cached/);
    expect((await cli("status", "--set", "power=3")).out).toMatch(/^all: 5 cached/);
  });

  it("lists the checkpoint of a dead run and removes it with --force; keeps one a root still needs", async () => {
    const root = project();
    const cli = (...args: string[]) => runIn(root, root, ...args);
    expect((await cli("run", "all")).code).toBe(0);
    const scratch = join(root, ".pipeline", "cache", "scratch");
    const [record] = await runRecords(root);
    const currentKey = record!.record.nodes["power[a]"]!;
    const deadKey = "ab".repeat(32);
    for (const key of [currentKey, deadKey]) {
      rmSync(join(root, ".pipeline", "cache", "ac", `${key}.json`), { force: true });
      mkdirSync(join(scratch, key));
      writeFileSync(join(scratch, key, "checkpoint.bin"), "x".repeat(2048));
    }
    const listed = await cli("gc");
    expect(listed.out).toContain("kept the checkpoint of power[a] (2.0 KiB): a rerun resumes from it\n");
    expect(listed.out).toMatch(/2\.0 KiB {2}checkpoint of a dead run: abababababab\n/);
    expect((await cli("gc", "--force")).code).toBe(0);
    expect(existsSync(join(scratch, deadKey))).toBe(false);
    expect(existsSync(join(scratch, currentKey, "checkpoint.bin"))).toBe(true);
  });
});

/** util-linux `script` runs a command on a pseudo-terminal: how a test answers gc's question in a terminal. */
const haveScript = spawnSync("script", ["--version"]).status === 0;

describe.skipIf(!haveScript)("gc in a terminal (util-linux script)", () => {
  it("asks before removing, and removes only after y", async () => {
    const root = project();
    expect((await runIn(root, root, "run", "all", "--set", 'names=["c"]')).code).toBe(0);
    const inTerminal = (answer: string) =>
      spawnSync("script", ["-qec", fakeCliCommand(["gc", "--keep-runs", "0"]), "/dev/null"], {
        cwd: root,
        env: { ...process.env, FAKE_DIR: root },
        input: `${answer}\n`,
        encoding: "utf8",
      }).stdout;
    expect(inTerminal("n")).toMatch(/remove them\? \[y\/N\] .*\n+nothing removed\r?\n$/s);
    expect(objectCount(root)).toBe(3);
    expect(inTerminal("y")).toMatch(/removed 3 artifact\(s\)/);
    expect(objectCount(root)).toBe(0);
  });
});

describe("gc during a run of another configuration", () => {
  it("removes nothing the run needs, and the run finishes without recomputing", async () => {
    const root = project();
    const cli = (...args: string[]) => runIn(root, root, ...args);
    expect((await cli("run", "all", "--set", 'names=["d"]')).code).toBe(0); // garbage for gc to remove
    const gate = join(root, "gate");
    // Another configuration: source[c] and power[c] are committed, then total waits before reading power[c].
    const run = spawnFakeCli(root, ["run", "all", "--set", 'names=["c"]', "--set", "power=3"], {
      FAKE_GATE: gate,
      FAKE_GATE_STAGE: "total",
    });
    try {
      const deadline = Date.now() + 60_000;
      while (!existsSync(`${gate}.waiting`)) {
        if (Date.now() > deadline) throw new Error("the run never reached the gate");
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(objects(root).has("power[c]")).toBe(true);
      // --keep-runs 0: no run record protects anything; only the run's lease does.
      const gc = await cli("gc", "--force", "--keep-runs", "0");
      expect(gc.code, gc.err).toBe(0);
      expect(gc.out).toMatch(/reached by running\n/);
      expect(gc.out).toMatch(/source\[d\]/);
      expect(gc.out).not.toMatch(/\[c\]/);
      const left = objects(root);
      expect(left.has("source[d]")).toBe(false);
      expect(left.has("source[c]") && left.has("power[c]")).toBe(true);
    } finally {
      writeFileSync(gate, "");
    }
    const exited = await run.exited;
    expect(exited.code, exited.err).toBe(0);
    expect(runCounts(root)).toMatchObject({ "source[c]": 1, "power[c]": 1, "total[all]": 2 });
  }, 120_000);
});
