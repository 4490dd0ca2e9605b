import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { main } from "../pipeline/cli.ts";
import type { LockFile } from "../pipeline/replay/lockfile.ts";
import { fakePipeline } from "./fixtures/fake-pipeline.ts";
import { capture } from "./fixtures/capture.ts";

let dir: string;
let lockFile: string;
let configFile: string;

/** Runs the fake pipeline's CLI in-process on a cache in `dir`; returns exit code and stderr. */
const fake = async (...args: string[]) => {
  const out = capture();
  const err = capture();
  const code = await main(fakePipeline(dir), [...args, "--cache-dir", join(dir, "cache")], {
    out: out.stream,
    err: err.stream,
  });
  return { code, err: err.text() };
};

const HINT = "use --out FILE for another lock, or --force to replace it";

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "lock-guard-"));
  lockFile = join(dir, "pipeline.lock.json");
  configFile = join(dir, "power3.json");
  writeFileSync(join(dir, "a.txt"), "1 2 3");
  writeFileSync(join(dir, "b.txt"), "4 5");
  writeFileSync(join(dir, "behaviour.json"), JSON.stringify({ failOn: [], sleepMs: 0 }));
  writeFileSync(configFile, JSON.stringify({ power: 3 }));
  expect((await fake("run", "all", "--config", configFile)).code).toBe(0);
  expect((await fake("run", "all", "--set", "power=4")).code).toBe(0);
  const locked = await fake("lock", "all", "--config", configFile, "--out", lockFile);
  expect(locked.code, locked.err).toBe(0);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("pipeline lock over an existing lock file", () => {
  it("refuses another configuration in one line naming both, leaving the file as it was", async () => {
    const before = readFileSync(lockFile, "utf8");
    const r = await fake("lock", "all", "--set", "power=4", "--out", lockFile);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `pipeline: ${lockFile} pins target all with --config {"power":3}; ` +
        `this lock is for target all with --set power=4: ${HINT}\n`,
    );
    expect(readFileSync(lockFile, "utf8")).toBe(before);
  });

  it("refuses another target, naming the --config file when its contents are the pinned ones", async () => {
    const before = readFileSync(lockFile, "utf8");
    const r = await fake("lock", "power[a]", "--config", configFile, "--out", lockFile);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `pipeline: ${lockFile} pins target all with --config ${configFile}; ` +
        `this lock is for target power[a] with --config ${configFile}: ${HINT}\n`,
    );
    expect(readFileSync(lockFile, "utf8")).toBe(before);
  });

  it("rewrites a lock of the same target and configuration without --force", async () => {
    const before = readFileSync(lockFile, "utf8");
    const r = await fake("lock", "all", "--config", configFile, "--out", lockFile);
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(lockFile, "utf8")).toBe(before);
  });

  it("replaces a lock of another configuration with --force", async () => {
    const r = await fake("lock", "all", "--set", "power=4", "--out", lockFile, "--force");
    expect(r.code, r.err).toBe(0);
    const lock = JSON.parse(readFileSync(lockFile, "utf8")) as LockFile;
    expect(lock.configSources).toEqual({ preset: null, config: null, set: ["power=4"], options: {} });
  });

  it("refuses to replace a file that is not a valid lock without --force", async () => {
    writeFileSync(lockFile, "not a lock");
    const r = await fake("lock", "all", "--out", lockFile);
    expect(r.code).toBe(2);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toMatch(new RegExp(`^pipeline: lock file ${lockFile} is not valid JSON: .*; ${HINT}\\n$`));
    expect(readFileSync(lockFile, "utf8")).toBe("not a lock");

    writeFileSync(lockFile, JSON.stringify({ formatVersion: 1 }));
    expect((await fake("lock", "all", "--out", lockFile)).err).toMatch(
      /^pipeline: malformed lock file .*; use --out FILE/,
    );

    const forced = await fake("lock", "all", "--config", configFile, "--out", lockFile, "--force");
    expect(forced.code, forced.err).toBe(0);
    expect((JSON.parse(readFileSync(lockFile, "utf8")) as LockFile).target).toBe("all");
  });
});
