/**
 * Verification of an action-cache entry's blobs against its manifest, and the stat memo verified/<key>.json that
 * lets a later check skip re-hashing a blob whose (size, mtime, ctime, inode) is unchanged since its last full hash
 * (git-index style). One per-file rule ({@link judgeStat}) serves both paths: lookup's synchronous fast path, which
 * hashes and writes nothing, and the full check, which hashes what the memo does not vouch for and refreshes it.
 * A memo records the host that made it and vouches only there: another host sees other inodes and ctimes on a shared
 * filesystem (and its own attribute cache), so it re-hashes and writes its own memo.
 */
import { hostname } from "node:os";
import { readFileSync, statSync, type BigIntStats } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { ifExists, writeFileAtomic } from "./fsutil.ts";
import { blobPath, entryPath, viewDir, type StoreLayout } from "./layout.ts";
import { parseManifest, type ArtifactEntry, type Manifest } from "./manifest.ts";

/** One artifact file's identity at the time its hash was last checked. */
export interface StatStamp {
  readonly sha256: string;
  readonly size: string;
  readonly mtimeNs: string;
  readonly ctimeNs: string;
  readonly ino: string;
}

export interface StatMemo {
  readonly key: string;
  /** The host whose stats these are. */
  readonly host: string;
  /** By artifact file name. */
  readonly files: Readonly<Record<string, StatStamp>>;
}

export const stampOf = (sha256: string, stats: BigIntStats): StatStamp => ({
  sha256,
  size: String(stats.size),
  mtimeNs: String(stats.mtimeNs),
  ctimeNs: String(stats.ctimeNs),
  ino: String(stats.ino),
});

const sameStamp = (a: StatStamp | undefined, b: StatStamp): boolean =>
  a !== undefined &&
  a.sha256 === b.sha256 &&
  a.size === b.size &&
  a.mtimeNs === b.mtimeNs &&
  a.ctimeNs === b.ctimeNs &&
  a.ino === b.ino;

/**
 * verified/<key>.json's text as a memo of this key made on this host, or undefined (an unreadable memo, or one made
 * elsewhere, only costs a re-hash).
 */
const parseMemo = (key: string, text: string): StatMemo | undefined => {
  try {
    const memo = JSON.parse(text) as StatMemo;
    const usable = memo.key === key && memo.host === hostname() && typeof memo.files === "object";
    return usable && memo.files !== null ? memo : undefined;
  } catch {
    return undefined;
  }
};

export const memoPath = (layout: StoreLayout, key: string): string => path.join(layout.paths.verified, `${key}.json`);

/**
 * Writes a memo of this host; failing to (read-only cache, full disk) must not fail anything: it is an optimisation.
 */
export const writeMemo = async (layout: StoreLayout, memo: Omit<StatMemo, "host">): Promise<void> => {
  try {
    const text = JSON.stringify({ key: memo.key, host: hostname(), files: memo.files });
    await writeFileAtomic(memoPath(layout, memo.key), text, { tempDir: layout.paths.tmp });
  } catch {
    // only costs a re-hash next time
  }
};

/** What the stat of one artifact file says: a problem, or its stamp and whether its bytes must be hashed. */
type StatVerdict =
  { readonly problem: string; readonly missing: boolean } | { readonly stamp: StatStamp; readonly mustHash: boolean };

const judgeStat = (
  name: string,
  entry: ArtifactEntry,
  stats: BigIntStats | undefined,
  memo: StatMemo | undefined,
): StatVerdict => {
  const label = `artifact '${name}' (${entry.file})`;
  if (stats === undefined) return { problem: `${label} is missing`, missing: true };
  if (!stats.isFile()) return { problem: `${label} is not a regular file`, missing: false };
  if (stats.size !== BigInt(entry.bytes))
    return { problem: `${label}: size expected ${entry.bytes} bytes, found ${stats.size}`, missing: false };
  const stamp = stampOf(entry.sha256, stats);
  return { stamp, mustHash: !sameStamp(memo?.files[entry.file], stamp) };
};

/** A small file's text, or undefined on any error: for the fast path, which leaves every failure to the full check. */
const readFileOrUndefined = (file: string): string | undefined => {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
};

/**
 * The manifest of ac/<key>.json when it is valid, names this key, and every artifact, reached through views/<key>/
 * (so the view is checked too), passes {@link judgeStat} without needing a hash: exactly when the full check would
 * hash nothing and write nothing. Anything else (missing, corrupt,
 * memo absent or stale, an fs error) returns undefined and the full check decides. Synchronous on purpose: each
 * fs.promises call is a thread-pool round trip, and for these small, page-cached files the sync calls take
 * microseconds, which makes planning 3-5x faster.
 */
export const verifiedManifest = (layout: StoreLayout, key: string): Manifest | undefined => {
  const text = readFileOrUndefined(entryPath(layout.paths, key));
  if (text === undefined) return undefined;
  const parsed = parseManifest(text);
  if ("error" in parsed || parsed.manifest.key !== key) return undefined;
  const memoText = readFileOrUndefined(memoPath(layout, key));
  const memo = memoText === undefined ? undefined : parseMemo(key, memoText);
  if (memo === undefined) return undefined;
  const dir = viewDir(layout.paths, key);
  for (const [name, entry] of Object.entries(parsed.manifest.artifacts)) {
    let stats: BigIntStats | undefined;
    try {
      stats = statSync(path.join(dir, entry.file), { bigint: true, throwIfNoEntry: false });
    } catch {
      return undefined;
    }
    const verdict = judgeStat(name, entry, stats, memo);
    if ("problem" in verdict || verdict.mustHash) return undefined;
  }
  return parsed.manifest;
};

/** Why an entry's blobs are not intact: one line, and the blob at fault when one is there but wrong. */
export interface BlobProblem {
  readonly reason: string;
  readonly badBlob?: string;
}

/**
 * What is wrong with the entry's blobs, or undefined when they are intact. Hashes every blob whose stat the memo does
 * not vouch for (every blob when `full`), then refreshes the memo.
 */
export const verifyArtifacts = async (
  layout: StoreLayout,
  manifest: Manifest,
  full: boolean,
): Promise<BlobProblem | undefined> => {
  let memo: StatMemo | undefined;
  if (!full) {
    const text = await ifExists(() => fs.readFile(memoPath(layout, manifest.key), "utf8"));
    memo = text === undefined ? undefined : parseMemo(manifest.key, text);
  }
  const stamps: Record<string, StatStamp> = {};
  let hashed = false;
  for (const [name, entry] of Object.entries(manifest.artifacts)) {
    const file = blobPath(layout.paths, entry.sha256);
    const verdict = judgeStat(name, entry, await ifExists(() => fs.lstat(file, { bigint: true })), memo);
    if ("problem" in verdict) return { reason: verdict.problem, ...(verdict.missing ? {} : { badBlob: entry.sha256 }) };
    stamps[entry.file] = verdict.stamp; // taken before hashing: a write during the hash makes the memo miss next time
    if (!verdict.mustHash) continue;
    const actual = await layout.hashFile(file);
    if (actual !== entry.sha256) {
      const reason = `artifact '${name}' (${entry.file}): sha256 expected ${entry.sha256}, found ${actual}`;
      return { reason, badBlob: entry.sha256 };
    }
    hashed = true;
  }
  if (hashed || memo === undefined) await writeMemo(layout, { key: manifest.key, files: stamps });
  return undefined;
};
