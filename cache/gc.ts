/**
 * Garbage: tmp/ entries of dead processes, and on request everything the current configuration no longer reaches.
 * Deletions go through a rename into tmp/, so a crash mid-delete leaves garbage in tmp/, never a half-deleted entry.
 */
import { hostname } from "node:os";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { diskBytes, errnoCode, HOST_TAG, ifExists, isPidAlive, parseTempName, tempName } from "./fsutil.ts";
import { entryPath, keyOfEntryFile, lockPath, type StoreLayout } from "./layout.ts";
import { lockHolder, tryAcquireLock } from "./lock.ts";
import { isKey, parseManifest } from "./manifest.ts";
import { readRefFile } from "./refs.ts";

export interface GcResult {
  /** Keys of the entries removed (or, in a dry run, that would be). */
  readonly removed: string[];
  /** Every path removed (or that would be), relative to the root: "ac/<key>.json", "cas/sha256/ab/ab12...", ... */
  readonly removedPaths: string[];
  /** Bytes of regular files in the removed paths. */
  readonly freedBytes: number;
  /** Keys whose entry or scratch dir was left alone because a live process holds their lock. */
  readonly skipped: string[];
}

const ONE_DAY_MS = 24 * 60 * 60 * 1000;

/** Deletes a file or tree by first renaming it into tmp/; false when it was not there. */
export const deleteViaTmp = async (layout: StoreLayout, target: string): Promise<boolean> => {
  const doomed = path.join(layout.paths.tmp, tempName("deleted"));
  try {
    await fs.rename(target, doomed);
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return false;
    throw error;
  }
  await fs.rm(doomed, { recursive: true, force: true });
  return true;
};

/**
 * Removes tmp/ entries left by dead processes of this host once older than `staleTmpAfterMs` (entries of another
 * host, whose pids cannot be checked, once older than a day). Returns the removed names.
 */
export const cleanTmp = async (layout: StoreLayout): Promise<string[]> => {
  const removed: string[] = [];
  const now = Date.now();
  for (const entry of await fs.readdir(layout.paths.tmp)) {
    const full = path.join(layout.paths.tmp, entry);
    const stats = await ifExists(() => fs.lstat(full));
    if (stats === undefined) continue;
    const ageMs = now - stats.mtimeMs;
    const owner = parseTempName(entry);
    const ownerGone =
      owner === undefined || (owner.hostTag === HOST_TAG ? !isPidAlive(owner.pid) : ageMs >= ONE_DAY_MS);
    // A dead writer on this host is certain garbage; anything else waits out the grace period first.
    const deadHere = owner !== undefined && owner.hostTag === HOST_TAG && ownerGone;
    if (deadHere || (ageMs >= layout.staleTmpAfterMs && ownerGone)) {
      await fs.rm(full, { recursive: true, force: true });
      removed.push(entry);
    }
  }
  return removed;
};

const sortedEntries = async (dir: string): Promise<string[]> => (await fs.readdir(dir)).sort();

/** The sha256 of every blob that the entries of `keys` name (an unreadable entry names none: it is corrupt). */
const liveBlobs = async (layout: StoreLayout, keys: ReadonlySet<string>): Promise<Set<string>> => {
  const live = new Set<string>();
  for (const key of keys) {
    const text = await ifExists(() => fs.readFile(entryPath(layout.paths, key), "utf8"));
    const parsed = text === undefined ? undefined : parseManifest(text);
    if (parsed !== undefined && "manifest" in parsed) {
      for (const a of Object.values(parsed.manifest.artifacts)) live.add(a.sha256);
    }
  }
  return live;
};

/** Removes (through `remove`) the blobs of cas/ not in `live` whose last link or write is older than the grace. */
const sweepBlobs = async (
  layout: StoreLayout,
  live: ReadonlySet<string>,
  remove: (relative: string) => Promise<void>,
): Promise<void> => {
  const now = Date.now();
  const cas = path.relative(layout.paths.root, layout.paths.cas);
  for (const prefix of await sortedEntries(layout.paths.cas)) {
    const dir = path.join(layout.paths.cas, prefix);
    const blobs = await ifExists(() => fs.readdir(dir)).catch(() => undefined);
    if (blobs === undefined) {
      await remove(path.join(cas, prefix)); // not a directory: nothing of ours
      continue;
    }
    for (const blob of blobs.sort()) {
      if (live.has(blob)) continue;
      const stats = await ifExists(() => fs.lstat(path.join(dir, blob)));
      if (stats !== undefined && now - stats.ctimeMs >= layout.blobGraceMs) await remove(path.join(cas, prefix, blob));
    }
  }
};

/**
 * Removes everything not reachable from `keep`: entries and their views, memos and scratch dirs, refs to removed keys,
 * blobs that no remaining entry names (once older than the grace period: a commit in flight links its blobs before it
 * writes its entry), all of quarantine/, scratch dirs of committed entries, views and memos without entries, stale
 * locks and stale tmp/ entries. Keys whose lock a live process holds are skipped. A dry run only reports (it neither
 * removes nor breaks locks).
 */
export const gc = async (layout: StoreLayout, keep: ReadonlySet<string>, dryRun: boolean): Promise<GcResult> => {
  const { paths } = layout;
  const removed: string[] = [];
  const removedPaths: string[] = [];
  const skipped: string[] = [];
  let freedBytes = 0;
  const remove = async (relative: string) => {
    const full = path.join(paths.root, relative);
    if ((await ifExists(() => fs.lstat(full))) === undefined) return;
    const bytes = await diskBytes(full);
    if (!dryRun && !(await deleteViaTmp(layout, full))) return;
    freedBytes += bytes;
    removedPaths.push(relative);
    const key = relative.startsWith("ac" + path.sep) ? keyOfEntryFile(path.basename(relative)) : undefined;
    if (key !== undefined) removed.push(key);
  };
  /** Runs `f` holding the key's lock, or records the key as skipped if a live process holds it. */
  const withKeyLock = async (key: string, f: () => Promise<void>) => {
    if (dryRun) {
      const holder = await lockHolder(lockPath(paths, key));
      const live = holder !== undefined && (holder.host !== hostname() || isPidAlive(holder.pid));
      if (live) skipped.push(key);
      else await f();
      return;
    }
    const release = await tryAcquireLock(lockPath(paths, key), paths.tmp);
    if (release === undefined) return void skipped.push(key);
    try {
      await f();
    } finally {
      await release();
    }
  };

  const entryKeys = new Set<string>();
  for (const entry of await sortedEntries(paths.ac)) {
    const key = keyOfEntryFile(entry);
    if (key === undefined) await remove(path.join("ac", entry));
    else if (keep.has(key)) entryKeys.add(key);
    else {
      entryKeys.add(key);
      await withKeyLock(key, async () => {
        await remove(path.join("ac", entry));
        await remove(path.join("views", key));
        await remove(path.join("verified", `${key}.json`));
        await remove(path.join("scratch", key));
        entryKeys.delete(key);
      });
    }
  }
  for (const entry of await sortedEntries(paths.scratch)) {
    const relative = path.join("scratch", entry);
    if (removedPaths.includes(relative)) continue;
    if (!isKey(entry)) await remove(relative);
    else if (!keep.has(entry) || entryKeys.has(entry)) await withKeyLock(entry, () => remove(relative));
  }
  for (const entry of await sortedEntries(paths.verified)) {
    const key = entry.replace(/\.json$/, "");
    if (!entryKeys.has(key) && !removedPaths.includes(path.join("verified", entry)))
      await remove(path.join("verified", entry));
  }
  for (const entry of await sortedEntries(paths.views)) {
    if (!entryKeys.has(entry) && !removedPaths.includes(path.join("views", entry)))
      await remove(path.join("views", entry));
  }
  await sweepBlobs(layout, await liveBlobs(layout, entryKeys), remove);
  const stages = (await fs.readdir(paths.refs, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
  for (const stage of stages.sort()) {
    for (const entry of await sortedEntries(path.join(paths.refs, stage))) {
      const ref = await readRefFile(path.join(paths.refs, stage, entry));
      if (ref === undefined || !(keep.has(ref.key) || skipped.includes(ref.key)))
        await remove(path.join("refs", stage, entry));
    }
  }
  for (const entry of await sortedEntries(paths.quarantine)) await remove(path.join("quarantine", entry));
  if (!dryRun) {
    for (const entry of await fs.readdir(paths.locks)) {
      const key = entry.replace(/\.lock$/, "");
      if (isKey(key)) await (await tryAcquireLock(lockPath(paths, key), paths.tmp))?.(); // breaks a stale lock only
    }
    await cleanTmp(layout);
  }
  return { removed, removedPaths, freedBytes, skipped: [...new Set(skipped)] };
};
