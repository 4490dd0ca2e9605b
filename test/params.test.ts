/**
 * `pipeline params diff` (issue 10, item 2): the current configuration against a lock file's, against the project
 * file at a git revision (a temp git repository), and against the last run's, one line per differing parameter.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { makeFakeProject, runIn, writeProjectFile } from "./fixtures/fake-project.ts";

const made: string[] = [];
afterEach(() => made.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));
const project = (settings: Record<string, unknown>) => {
  const dir = makeFakeProject(settings);
  made.push(dir);
  return dir;
};

const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "user.name=test", "-c", "user.email=test@example.com", ...args], {
    cwd,
    stdio: "ignore",
  });

describe("params diff", () => {
  it("against the lock file: one line per parameter, old -> new", async () => {
    const root = project({ pipeline: "fake", set: ["power=3"] });
    expect((await runIn(root, root, "run", "all")).code).toBe(0);
    expect((await runIn(root, root, "lock", "all")).code).toBe(0);
    expect(await runIn(root, root, "params", "diff")).toEqual({
      code: 0,
      out: "no differences\n",
      err: `params diff: lock ${join(root, "pipeline.lock.json")} (all) -> the current configuration\n`,
    });
    writeProjectFile(root, { pipeline: "fake", preset: "three", set: ["power=4"] });
    const diff = await runIn(root, root, "params", "diff");
    expect(diff.out).toBe('names ["a","b"] -> ["a","b","c"]\npower 3 -> 4\n');
    // A lock named on the command line, and a --set of this command, count too.
    const named = await runIn(root, root, "params", "diff", "pipeline.lock.json", "--set", "sleepMs=5");
    expect(named.out).toBe('names ["a","b"] -> ["a","b","c"]\npower 3 -> 4\nsleepMs 0 -> 5\n');
  });

  it("against pipeline.config.json (and the config file it names) at a git revision", async () => {
    const root = project({ pipeline: "fake", config: "conf/base.json" });
    mkdirSync(join(root, "conf"));
    writeFileSync(join(root, "conf", "base.json"), JSON.stringify({ power: 3 }));
    git(root, "init", "-q");
    git(root, "add", "pipeline.config.json", "conf/base.json");
    git(root, "commit", "-qm", "power 3");
    writeFileSync(join(root, "conf", "base.json"), JSON.stringify({ power: 4, failOn: ["a"] }));
    writeProjectFile(root, { pipeline: "fake", config: "conf/base.json", set: ['names=["a"]'] });
    const sub = join(root, "conf");
    const diff = await runIn(root, sub, "params", "diff", "HEAD");
    expect(diff.code, diff.err).toBe(0);
    expect(diff.err).toBe("params diff: pipeline.config.json at HEAD -> the current configuration\n");
    expect(diff.out).toBe('failOn [] -> ["a"]\nnames ["a","b"] -> ["a"]\npower 3 -> 4\n');
    const missing = await runIn(root, root, "params", "diff", "no-such-rev");
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/^pipeline: cannot read pipeline\.config\.json at git revision no-such-rev: fatal: /);
  });

  it("against the last run", async () => {
    const root = project({ pipeline: "fake" });
    expect((await runIn(root, root, "params", "diff", "--last-run")).err).toBe(
      `pipeline: no run recorded in ${root} yet\n`,
    );
    expect((await runIn(root, root, "run", "source", "--set", "power=3")).code).toBe(0);
    const diff = await runIn(root, root, "params", "diff", "--last-run");
    expect(diff.err).toMatch(/^params diff: the last run \(source, \d{4}-.*\) -> the current configuration\n$/);
    expect(diff.out).toBe("power 3 -> 2\n");
  });
});
