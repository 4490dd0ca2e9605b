/**
 * The workspace (issue 10, items 1 and 2): the project root is found from any folder below it, the cache lives in
 * <root>/.pipeline/cache, read-only commands create nothing, outside a project the CLI says so in one line, and the
 * project's pipeline.config.json is the configuration every command means unless flags override it.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { LockFile } from "../pipeline/replay/lockfile.ts";
import { makeFakeProject, runIn, writeProjectFile } from "./fixtures/fake-project.ts";

const made: string[] = [];
const project = (settings?: Record<string, unknown> | null) => {
  const dir = makeFakeProject(settings === null ? undefined : settings);
  made.push(dir);
  return dir;
};
afterEach(() => made.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Every path below `dir` (folders with a trailing slash), relative to it. */
const tree = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((p) => (statSync(join(dir, p)).isDirectory() ? `${p}/` : p))
    .sort();

describe("the project root", () => {
  it("is found from a subfolder: status there reports the root's cache and creates nothing", async () => {
    const root = project();
    const run = await runIn(root, root, "run", "all");
    expect(run.code, run.err).toBe(0);
    expect(existsSync(join(root, ".pipeline", "cache", "ac"))).toBe(true);
    const docs = join(root, "docs", "deeper");
    mkdirSync(docs, { recursive: true });
    const status = await runIn(root, docs, "status");
    expect(status.code, status.err).toBe(0);
    expect(status.out.split("\n")[0]).toBe("all: 5 cached, 0 stale, 0 pending (below a stale node)");
    expect(tree(join(root, "docs"))).toEqual(["deeper/"]);
  });

  it("--cache-dir and PIPELINE_CACHE_DIR override the project's cache", async () => {
    const root = project();
    const elsewhere = join(root, "elsewhere");
    expect((await runIn(root, root, "run", "source", "--cache-dir", elsewhere)).code).toBe(0);
    expect(existsSync(join(elsewhere, "ac"))).toBe(true);
    expect(existsSync(join(root, ".pipeline", "cache"))).toBe(false);
    process.env.PIPELINE_CACHE_DIR = elsewhere;
    try {
      expect((await runIn(root, root, "status", "source")).out).toMatch(/^source: 2 cached/);
    } finally {
      delete process.env.PIPELINE_CACHE_DIR;
    }
  });
});

describe("read-only commands", () => {
  it("create no folder and no file, in a fresh project or one with a cache", async () => {
    const root = project();
    const readOnly = [
      ["status"],
      ["status", "--json"],
      ["dag", "all"],
      ["inspect", "--list"],
      ["gc"],
      ["gc", "--dry-run"],
      ["params", "diff", "--last-run"],
      ["lock", "all"], // refused: nothing is cached
      ["lock", "all", "--check"],
    ];
    const before = tree(root);
    for (const args of readOnly) await runIn(root, root, ...args);
    expect(tree(root)).toEqual(before);

    expect((await runIn(root, root, "run", "all")).code).toBe(0);
    const cached = tree(root);
    for (const args of readOnly.slice(0, 6)) {
      const r = await runIn(root, root, ...args);
      expect(r.code, `${args.join(" ")}: ${r.err}`).toBe(0);
    }
    expect(tree(root)).toEqual(cached);
  });
});

describe("outside any project", () => {
  const outside = () => {
    const dir = mkdtempSync(join(tmpdir(), "no-project-"));
    made.push(dir);
    return dir;
  };

  it("a command that needs the cache says so in one line, exit code 2, and creates nothing", async () => {
    const dir = outside();
    for (const command of ["status", "run", "gc", "inspect"]) {
      const r = await runIn(dir, dir, command, ...(command === "inspect" ? ["--list"] : ["all"]));
      expect(r).toEqual({
        code: 2,
        out: "",
        err:
          `pipeline: not inside a project of this pipeline (no pipeline.config.json in ${dir} or above); run ` +
          "`pipeline init` to make this folder one, or give --cache-dir DIR (env PIPELINE_CACHE_DIR)\n",
      });
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it("a project file of another pipeline is not this pipeline's project", async () => {
    const dir = outside();
    writeProjectFile(dir, { pipeline: "another" });
    const r = await runIn(dir, dir, "status");
    expect(r.code).toBe(2);
    expect(r.err).toContain(`(${join(dir, "pipeline.config.json")} configures pipeline "another")`);
  });

  it("--cache-dir, --version, help, dag and init still work", async () => {
    const dir = outside();
    const data = project(null); // the fake pipeline's data files, outside any project
    expect((await runIn(data, dir, "run", "all", "--cache-dir", join(dir, "cache"))).code).toBe(0);
    expect((await runIn(data, dir, "--version")).out).toMatch(/^pipeline \d/);
    expect((await runIn(data, dir, "help", "gc")).code).toBe(0);
    expect((await runIn(data, dir, "dag", "all")).out).toContain("total[all] <- power[a], power[b]");
    const init = await runIn(data, dir, "init", "--set", "power=3");
    expect(init.code, init.err).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, "pipeline.config.json"), "utf8"))).toEqual({
      pipeline: "fake",
      set: ["power=3"],
    });
    expect((await runIn(data, dir, "status")).out).toMatch(/^all: 0 cached/);
  });
});

describe("pipeline init", () => {
  it("refuses to overwrite a project file, and to write an invalid configuration", async () => {
    const root = project({ pipeline: "fake", preset: "three" });
    const before = readFileSync(join(root, "pipeline.config.json"), "utf8");
    const again = await runIn(root, root, "init");
    expect(again.code).toBe(2);
    expect(again.err).toBe(
      `pipeline: ${join(root, "pipeline.config.json")} already exists: edit it, or remove it to start over\n`,
    );
    expect(readFileSync(join(root, "pipeline.config.json"), "utf8")).toBe(before);

    const fresh = join(root, "fresh");
    mkdirSync(fresh);
    const bad = await runIn(root, fresh, "init", "--set", "power=9");
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^pipeline: invalid configuration: power: /);
    expect(readdirSync(fresh)).toEqual([]);
  });
});

describe("the remembered configuration", () => {
  it("is what run, status, lock and gc mean without flags; flags override it per command", async () => {
    const root = project({ pipeline: "fake", preset: "three", set: ["power=3"] });
    expect((await runIn(root, root, "run", "all")).code).toBe(0);
    expect((await runIn(root, root, "status")).out).toMatch(/^all: 7 cached, 0 stale/);
    // --set applies after the project's; --preset (or --config) chooses another configuration: power 2 again.
    const power2 = /^all: 3 cached, 3 stale, 1 pending/;
    expect((await runIn(root, root, "status", "--set", "power=2")).out).toMatch(power2);
    expect((await runIn(root, root, "status", "--preset", "three")).out).toMatch(power2);
    expect((await runIn(root, root, "status", "--preset", "three", "--set", "power=3")).out).toMatch(/^all: 7 cached/);
    const lock = await runIn(root, root, "lock", "all");
    expect(lock.code, lock.err).toBe(0);
    const written = JSON.parse(readFileSync(join(root, "pipeline.lock.json"), "utf8")) as LockFile;
    expect(written.configSources).toMatchObject({ preset: "three", set: ["power=3"] });
    expect((await runIn(root, root, "lock", "all", "--check")).code).toBe(0);
    const stale = await runIn(root, root, "lock", "all", "--check", "--set", "power=2", "--set", 'names=["a","b"]');
    expect(stale.code).toBe(2); // power=2 is not cached: lock --check needs what it checks cached
    expect((await runIn(root, root, "run", "all", "--set", 'names=["a","b"]')).code).toBe(0);
    const changed = await runIn(root, root, "lock", "all", "--check", "--set", 'names=["a","b"]');
    expect(changed.code).toBe(1);
    expect(changed.out).toContain('configuration set ["power=3"] -> ["power=3","names=[\\"a\\",\\"b\\"]"]\n');
    expect(changed.out).toContain("power[c]: in the lock only\n");
    expect(changed.out).toMatch(/total\[all\]: key [0-9a-f]{12} -> [0-9a-f]{12}\n/);
    expect((await runIn(root, root, "gc")).out).toContain("nothing to remove");
  });

  it("a config file named by the project is read relative to the root", async () => {
    const root = project({ pipeline: "fake", config: "conf/power.json" });
    mkdirSync(join(root, "conf"));
    writeFileSync(join(root, "conf", "power.json"), JSON.stringify({ power: 4 }));
    const sub = join(root, "conf");
    expect((await runIn(root, sub, "run", "power[a]")).code).toBe(0);
    const status = await runIn(root, sub, "status", "power[a]", "--json");
    expect(JSON.parse(status.out)).toHaveLength(2);
    expect((await runIn(root, sub, "params", "diff", "--last-run")).out).toBe("no differences\n");
    expect((await runIn(root, sub, "status", "--set", "power=2")).out).toMatch(/^all: 1 cached/);
  });

  it("a bad project file is one line naming the file and the field", async () => {
    const root = project({ pipeline: "fake", set: "power=3" });
    const file = join(root, "pipeline.config.json");
    const r = await runIn(root, root, "status");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      new RegExp(`^pipeline: invalid ${file}: set: Expected ReadonlyArray<string>, actual "power=3"\n$`),
    );
    writeProjectFile(root, { pipeline: "fake", presett: "three" });
    expect((await runIn(root, root, "status")).err).toMatch(new RegExp(`^pipeline: invalid ${file}: presett: `));
  });
});
