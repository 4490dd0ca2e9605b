/**
 * The command-line conventions people expect, checked on the real CLI as a process (bin/pipeline.mjs over the
 * paper's pipeline) and, for the many kinds of mistake, in-process through the same `main`: --version, help per
 * command, "did you mean" for commands, options, targets and presets, and errors in the tool's own words; plus the
 * edit distance behind the suggestions.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { main } from "../pipeline/cli.ts";
import { dag } from "../pipeline/commands/dag.ts";
import { gc } from "../pipeline/commands/gc.ts";
import { documentedFlags } from "../pipeline/commands/help.ts";
import { inspect } from "../pipeline/commands/inspect.ts";
import { lock } from "../pipeline/commands/lock.ts";
import { replay } from "../pipeline/commands/replay.ts";
import { run } from "../pipeline/commands/run.ts";
import { status } from "../pipeline/commands/status.ts";
import { closest, didYouMean, editDistance } from "../pipeline/suggest.ts";
import { paperPipeline } from "../stages/index.ts";
import { capture } from "./fixtures/capture.ts";

const repoRoot = path.resolve(import.meta.dirname, "..");
const scratch = mkdtempSync(path.join(tmpdir(), "cli-conventions-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs `node bin/pipeline.mjs ARGS` from the sources, with a scratch cache; never rejects. */
const pipeline = (...args: string[]) =>
  new Promise<{ code: number | null; out: string; err: string }>((done) => {
    const child = execFile(
      process.execPath,
      [path.join(repoRoot, "bin/pipeline.mjs"), ...args],
      {
        cwd: scratch,
        env: { ...process.env, PIPELINE_FROM_SOURCES: "1", PIPELINE_CACHE_DIR: path.join(scratch, "cache") },
        timeout: 60_000,
      },
      (_, out, err) => done({ code: child.exitCode, out, err }),
    );
  });

describe("editDistance", () => {
  it("counts insertions, deletions, substitutions and neighbour swaps as one edit each", () => {
    expect(editDistance("run", "run")).toBe(0);
    expect(editDistance("rnu", "run")).toBe(1);
    expect(editDistance("smok", "smoke")).toBe(1);
    expect(editDistance("stauts", "status")).toBe(1);
    expect(editDistance("rum", "run")).toBe(1);
    expect(editDistance("", "gc")).toBe(2);
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("ca", "abc")).toBe(3); // a swap is not edited again (optimal string alignment)
  });
});

describe("closest", () => {
  const commands = ["run", "status", "dag", "inspect", "gc", "lock", "replay"];

  it("suggests the nearest name within max(1, a third of the input's length)", () => {
    expect(closest("rnu", commands)).toBe("run");
    expect(closest("inpsect", commands)).toBe("inspect");
    expect(closest("replya", commands)).toBe("replay");
    expect(closest("rpelya", commands)).toBe("replay"); // two edits in six letters
    expect(closest("rpely", commands)).toBeUndefined(); // two edits in five: a different word
    expect(closest("xyz", commands)).toBeUndefined();
    expect(closest("frobnicate", commands)).toBeUndefined();
  });

  it("prefers the nearest, then the first of equally near ones", () => {
    expect(closest("stat", ["status", "state"])).toBe("state");
    expect(closest("lack", ["lock", "lick"])).toBe("lock");
  });

  it("writes the suggestion as the end of an error line", () => {
    expect(didYouMean("smok", ["paper", "smoke"])).toBe('; did you mean "smoke"?');
    expect(didYouMean("fti", ["fit"], (name) => `${name}[mnist]`)).toBe('; did you mean "fit[mnist]"?');
    expect(didYouMean("zzz", ["fit"])).toBe("");
  });
});

describe("per-command help", () => {
  it("documents exactly the flags each command declares", () => {
    for (const command of [run, status, dag, inspect, gc, lock, replay]) {
      expect([...documentedFlags(command.name)].sort(), command.name).toEqual(Object.keys(command.flags).sort());
    }
  });
});

describe("the CLI as a process", { timeout: 180_000 }, () => {
  it("--version and -V print the package's version", async () => {
    const { version } = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string };
    for (const flag of ["--version", "-V"]) {
      expect(await pipeline(flag)).toEqual({ code: 0, out: `pipeline ${version}\n`, err: "" });
    }
  });

  it("run --help and help run show run's usage, options and examples; --help keeps the command list", async () => {
    const ownHelp = await pipeline("run", "--help");
    expect(ownHelp.code).toBe(0);
    expect(ownHelp.out).toMatch(/^usage: pipeline run TARGET \[options\]\n/);
    expect(ownHelp.out).toMatch(/\n {2}-j, --jobs N +nodes computed at once \(default 2\)\n/);
    expect(ownHelp.out).toContain("\ncommon options:\n  --cache-dir DIR");
    expect(ownHelp.out).toContain("\nexamples:\n  pipeline run all --preset smoke\n");
    expect(ownHelp.out).not.toContain("replay");
    expect((await pipeline("help", "run")).out).toBe(ownHelp.out);
    const global = await pipeline("--help");
    expect(global.code).toBe(0);
    expect(global.out).toMatch(/^usage: pipeline <command> \[options\]\n\ncommands:\n {2}run TARGET/);
    expect(global.out).toContain("\n  replay [TARGET] --check ");
  });

  it("a mistyped command and a negative --jobs: one line in the tool's words on stderr, exit code 2", async () => {
    expect(await pipeline("rnu", "all")).toEqual({
      code: 2,
      out: "",
      err: 'pipeline: unknown command "rnu"; did you mean "run"?\n',
    });
    expect(await pipeline("run", "all", "--jobs", "-1")).toEqual({
      code: 2,
      out: "",
      err: 'pipeline: --jobs expects a positive integer, got "-1"\n',
    });
  });
});

describe("user mistakes (in-process, the same code the process runs)", () => {
  beforeEach(() => vi.stubEnv("PIPELINE_CACHE_DIR", path.join(scratch, "cache")));
  afterEach(() => vi.unstubAllEnvs());
  const cli = async (...args: string[]) => {
    const out = capture();
    const err = capture();
    const code = await main(paperPipeline, args, {
      out: out.stream,
      err: err.stream,
    });
    return { code, out: out.text(), err: err.text() };
  };

  it("get one line, with the nearest name when one is close, exit code 2", async () => {
    const cases: Array<[string[], string]> = [
      [["help", "rnu"], 'unknown command "rnu"; did you mean "run"?'],
      [
        ["frobnicate"],
        'unknown command "frobnicate" (run, status, dag, inspect, gc, lock, replay, params, init, push, pull, ' +
          "setup-backend, help)",
      ],
      [["run", "all", "--preest", "smoke"], 'unknown option "--preest" for run; did you mean "--preset"?'],
      [["status", "--jsno"], 'unknown option "--jsno" for status; did you mean "--json"?'],
      [["run", "all", "--x"], 'unknown option "--x" for run (see pipeline help run)'],
      [["run", "fti"], 'unknown target "fti"; did you mean "fit"?'],
      [["run", "fti[mnist]"], 'unknown target "fti[mnist]"; did you mean "fit[mnist]"?'],
      [
        ["status", "fit[mnsit]", "--preset", "smoke"],
        'target "fit[mnsit]" selects no node under this configuration; did you mean "fit[mnist]"?',
      ],
      [["run", "all", "--preset", "smok"], 'unknown preset "smok"; did you mean "smoke"?'],
      [["run", "all", "-j", "-1"], '--jobs expects a positive integer, got "-1"'],
      [["run", "all", "--jobs=-1"], '--jobs expects a positive integer, got "-1"'],
      [["run", "all", "--dry-run=yes"], '--dry-run takes no value, got "yes"'],
      [["run", "all", "--set"], "--set expects a value"],
      [
        ["run", "all", "--preset", "--dry-run"],
        '--preset expects a value, got the option "--dry-run" (write --preset=--dry-run if it is the value)',
      ],
    ];
    for (const [args, message] of cases) {
      expect(await cli(...args), args.join(" ")).toEqual({ code: 2, out: "", err: `pipeline: ${message}\n` });
    }
  });
});
