/**
 * Small crash-safety primitives shared by the artifact store: streaming hashes, fsync'd atomic writes,
 * and the naming scheme that lets a later process tell whether a temp entry's owner is still alive.
 */
import { createHash, randomBytes } from "node:crypto";
import { hostname } from "node:os";
import * as fs from "node:fs/promises";
import * as path from "node:path";

/** Node's fs errors carry a string `code` (ENOENT, EEXIST, ...). */
export const errnoCode = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
    ? error.code
    : undefined;

/** Runs `f`, mapping an ENOENT failure to `undefined` (the file simply is not there). */
export async function ifExists<A>(f: () => Promise<A>): Promise<A | undefined> {
  try {
    return await f();
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Creates `dir` and its missing parents, like `mkdir -p`, but fails with the real cause: Node's recursive mkdir reports
 * ENOENT when a read-only or unwritable parent stops it, where this reports EROFS, EACCES or EPERM. A `dir` that
 * already exists as a file fails with EEXIST, one below a file with ENOTDIR.
 */
export async function makeDirs(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir);
  } catch (error) {
    const code = errnoCode(error);
    if (code === "EEXIST" && (await fs.stat(dir)).isDirectory()) return;
    const parent = path.dirname(dir);
    if (code !== "ENOENT" || parent === dir) throw error;
    await makeDirs(parent);
    await makeDirs(dir);
  }
}

const HASH_CHUNK_BYTES = 1 << 20;

/** Hex sha256 of a file's bytes, read in 1 MiB chunks so big artifacts never sit in memory whole. */
export async function sha256File(file: string): Promise<string> {
  const handle = await fs.open(file, "r");
  try {
    const hash = createHash("sha256");
    const buffer = Buffer.allocUnsafe(HASH_CHUNK_BYTES);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
    return hash.digest("hex");
  } finally {
    await handle.close();
  }
}

/** Flushes a file's data and metadata to disk (a read-only handle suffices on Linux and macOS). */
export async function fsyncPath(file: string): Promise<void> {
  const handle = await fs.open(file, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes a directory's entries (creations, renames, unlinks) durable. */
export const fsyncDir = fsyncPath;

/**
 * A short, filename-safe tag of this machine, so that pids recorded in names are only interpreted on the host that owns
 * them.
 */
export const HOST_TAG = createHash("sha256").update(hostname()).digest("hex").slice(0, 8);

/**
 * A unique temp name `<hostTag>.<pid>.<random>[.<label>]`: the owner (host, pid) is recoverable with
 * {@link parseTempName}, which is how stale temp entries of killed processes are recognised.
 */
export function tempName(label?: string): string {
  const safeLabel = label === undefined ? "" : "." + label.replace(/[^A-Za-z0-9_-]+/g, "_").slice(0, 60);
  return `${HOST_TAG}.${process.pid}.${randomBytes(6).toString("hex")}${safeLabel}`;
}

/** The owner recorded by {@link tempName}, or undefined for a name it did not produce. */
export function parseTempName(name: string): { readonly hostTag: string; readonly pid: number } | undefined {
  const match = /^([0-9a-f]{8})\.(\d+)\.[0-9a-f]{12}(?:\.|$)/.exec(name);
  return match === null ? undefined : { hostTag: match[1]!, pid: Number(match[2]) };
}

/** True when a process with this pid exists on this machine (EPERM means it exists but belongs to another user). */
export function isPidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === "EPERM";
  }
}

/**
 * Replaces `file` with `data` so that readers (and a process restarting after kill -9 or power loss) see either the old
 * content or the new, never a mix: write a temp file, fsync it, rename it over `file`, fsync the directory.
 * The temp file lives in `tempDir` (default: beside `file`; it must be on the same filesystem).
 */
export async function writeFileAtomic(
  file: string,
  data: Uint8Array | string,
  options: { readonly tempDir?: string } = {},
): Promise<void> {
  const temp = path.join(options.tempDir ?? path.dirname(file), tempName(path.basename(file)) + ".tmp");
  try {
    const handle = await fs.open(temp, "wx");
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, file);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
  await fsyncDir(path.dirname(file));
}

/** Total size in bytes of the regular files below `target` (0 when it does not exist). */
export async function diskBytes(target: string): Promise<number> {
  const stats = await ifExists(() => fs.lstat(target));
  if (stats === undefined) return 0;
  if (!stats.isDirectory()) return stats.isFile() ? stats.size : 0;
  let total = 0;
  for (const entry of await fs.readdir(target)) total += await diskBytes(path.join(target, entry));
  return total;
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
