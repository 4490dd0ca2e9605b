/**
 * Filesystem mistakes in the folders a user chooses (--cache-dir, --out): each ends the command with exactly one line
 * on stderr naming the path, the cause and what to do, no stack trace, exit code 2. Run as real processes over the
 * fake pipeline (test/fixtures/fake-cli.ts), once through bin/pipeline.mjs with the paper's pipeline.
 *
 * Root ignores file permissions, so the read-only case uses a read-only bind mount when running as root (EROFS) and
 * a chmod 555 folder otherwise (EACCES); no space is a tmpfs with 4 inodes, mounted only where mount works (root).
 */
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fileSystemError } from "../pipeline/commands/errors.ts";

const repoRoot = resolve(import.meta.dirname, "..");
const isRoot = process.getuid?.() === 0;
const TIMEOUT_MS = 120_000;

let dir: string;
/** What a test undoes after it (unmount, restore permissions), last first. */
let cleanups: Array<() => void>;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fs-errors-"));
  cleanups = [];
  for (const [name, text] of [
    ["a.txt", "1 2 3"],
    ["b.txt", "4 5"],
    ["behaviour.json", JSON.stringify({ failOn: [], sleepMs: 0 })],
    ["a-file", "not a folder"],
  ])
    writeFileSync(join(dir, name!), text!);
});
afterEach(() => {
  for (const cleanup of cleanups.reverse()) cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** Mounts with `mount ARGS... TARGET`; false where this process may not mount. */
const tryMount = (args: string[], target: string): boolean => {
  mkdirSync(target, { recursive: true });
  try {
    execFileSync("mount", [...args, target], { stdio: "ignore" });
    cleanups.push(() => execFileSync("umount", [target]));
    return true;
  } catch {
    return false;
  }
};

interface Exited {
  readonly code: number | null;
  readonly stderr: string;
}

/**
 * Runs `pipeline ARGS` as a process (asynchronously, so that the test worker stays responsive): the fake pipeline by
 * default, the paper's through bin/pipeline.mjs if `paper`.
 */
const pipeline = (args: string[], paper = false): Promise<Exited> => {
  const entry = paper ? ["bin/pipeline.mjs"] : ["--import", "tsx", "test/fixtures/fake-cli.ts"];
  const env = { ...process.env, FAKE_DIR: dir, PIPELINE_FROM_SOURCES: "1" };
  return new Promise((done) => {
    const child = execFile(process.execPath, [...entry, ...args], { cwd: repoRoot, env }, (_error, _stdout, stderr) =>
      done({ code: child.exitCode, stderr }),
    );
  });
};

/** The command failed with exit code 2 and one `pipeline:` line (the last on stderr), without a stack trace. */
const expectOneLine = (r: Exited, message: string) => {
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines.filter((l) => l.startsWith("pipeline:"))).toEqual([`pipeline: ${message}`]);
  expect(lines.at(-1)).toBe(`pipeline: ${message}`);
  expect(r.stderr).not.toMatch(/^ {4}at /m);
  expect(r.code).toBe(2);
};

describe("--cache-dir that cannot be written", () => {
  it(
    "a file, or a folder below a file",
    async () => {
      const file = join(dir, "a-file");
      const isFile = `${file} is a file, not a folder`;
      const onlyLine = (r: Exited, message: string) => {
        expect(r.stderr).toBe(`pipeline: ${message}\n`);
        expectOneLine(r, message);
      };
      const [isAFile, belowAFile, paper] = await Promise.all([
        pipeline(["status", "all", "--cache-dir", file]),
        pipeline(["status", "all", "--cache-dir", join(file, "x", "y")]),
        pipeline(["status", "all", "--preset", "smoke", "--cache-dir", file], true),
      ]);
      const fileMessage = `cannot write the cache at ${file}: ${isFile} (EEXIST); choose another --cache-dir or move the file away`;
      onlyLine(isAFile, fileMessage);
      onlyLine(
        belowAFile,
        `cannot write the cache at ${join(file, "x", "y")}: ${isFile} (ENOTDIR); choose another --cache-dir or ` +
          "move the file away",
      );
      onlyLine(paper, fileMessage);
    },
    TIMEOUT_MS,
  );

  it(
    "a read-only folder says so (not ENOENT); reading an existing read-only cache still works",
    async () => {
      const readOnly = join(dir, "read-only");
      mkdirSync(join(dir, "source"));
      expect((await pipeline(["run", "all", "--cache-dir", join(dir, "source", "cache")])).code).toBe(0);
      let cause: string;
      if (isRoot) {
        const mounted = tryMount(["--bind", "-o", "ro", join(dir, "source")], readOnly);
        if (!mounted) return void console.warn("skipped: running as root and cannot mount a read-only bind mount");
        cause = "it is on a read-only file system (EROFS); choose another --cache-dir";
      } else {
        mkdirSync(readOnly);
        execFileSync("cp", ["-r", join(dir, "source", "cache"), readOnly]);
        chmodSync(readOnly, 0o555);
        cleanups.push(() => chmodSync(readOnly, 0o755));
        cause = "permission denied (EACCES); fix its permissions or choose another --cache-dir";
      }
      // run creates its cache (status, which only reads, creates nothing: there, a missing cache is an empty one).
      const nested = join(readOnly, "new", "cache");
      const r = await pipeline(["run", "all", "--cache-dir", nested]);
      expect(r.stderr).toBe(`pipeline: cannot write the cache at ${nested}: ${cause}\n`);
      expectOneLine(r, `cannot write the cache at ${nested}: ${cause}`);
      expect((await pipeline(["status", "all", "--cache-dir", join(readOnly, "cache")])).code).toBe(0);
    },
    TIMEOUT_MS,
  );

  it(
    "a full device names the path and that nothing half-written was cached",
    async () => {
      const full = join(dir, "full");
      if (!tryMount(["-t", "tmpfs", "-o", "size=64k,nr_inodes=4", "tmpfs"], full)) {
        return void console.warn("skipped: cannot mount a tmpfs here (not root); the mapping is tested directly below");
      }
      const cache = join(full, "cache");
      expectOneLine(
        await pipeline(["run", "all", "--cache-dir", cache]),
        `cannot write the cache at ${cache}: no space left on the device (ENOSPC); nothing half-written was cached; ` +
          "free some space or choose another --cache-dir",
      );
    },
    TIMEOUT_MS,
  );
});

describe("--out that cannot be written", () => {
  it(
    "an existing file, or a folder below a file",
    async () => {
      const cache = join(dir, "cache");
      const file = join(dir, "a-file");
      const isFile = `${file} is a file, not a folder`;
      expectOneLine(
        await pipeline(["run", "total", "--cache-dir", cache, "--out", file]),
        `cannot write the --out folder at ${file}: ${isFile} (EEXIST); choose another --out or move the file away`,
      );
      expectOneLine(
        await pipeline(["run", "source", "--cache-dir", cache, "--out", file]),
        `cannot write the --out folder at ${file}: ${isFile} (ENOTDIR); choose another --out or move the file away`,
      );
    },
    TIMEOUT_MS,
  );
});

describe("fileSystemError", () => {
  const where = { what: "the cache", dir: "/x", flag: "--cache-dir", recovery: "nothing half-written was cached" };
  const errno = (code: string) => Object.assign(new Error(`${code}: something, mkdir '/x'`), { code, path: "/x" });

  it("maps each cause to one line naming the path and what to do", () => {
    const messages = Object.fromEntries(
      ["EACCES", "EPERM", "EROFS", "EEXIST", "ENOSPC", "EDQUOT"].map((code) => [
        code,
        fileSystemError(errno(code), where)?.message,
      ]),
    );
    expect(messages).toEqual({
      EACCES:
        "cannot write the cache at /x: permission denied (EACCES); fix its permissions or choose another --cache-dir",
      EPERM:
        "cannot write the cache at /x: permission denied (EPERM); fix its permissions or choose another --cache-dir",
      EROFS: "cannot write the cache at /x: it is on a read-only file system (EROFS); choose another --cache-dir",
      EEXIST:
        "cannot write the cache at /x: /x is a file, not a folder (EEXIST); choose another --cache-dir or move the " +
        "file away",
      ENOSPC:
        "cannot write the cache at /x: no space left on the device (ENOSPC); nothing half-written was cached; free " +
        "some space or choose another --cache-dir",
      EDQUOT:
        "cannot write the cache at /x: no space left on the device (EDQUOT); nothing half-written was cached; free " +
        "some space or choose another --cache-dir",
    });
  });

  it("leaves other failures alone", () => {
    expect(fileSystemError(errno("EIO"), where)).toBeUndefined();
    expect(fileSystemError(new Error("not from the filesystem"), where)).toBeUndefined();
  });
});
