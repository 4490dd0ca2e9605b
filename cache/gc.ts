/**
 * Garbage: tmp/ entries of dead processes, and on request everything the current configuration no longer reaches.
 * Deletions go through a rename into tmp/, so a crash mid-delete leaves garbage in tmp/, never a half-deleted entry.
 */
import { hostname } from "node:os";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { diskBytes, errnoCode, HOST_TAG, ifExists, isPidAlive, parseTempName, tempName } from "./fsutil.ts";
import { lockPath, type StoreLayout } from "./layout.ts";
import { lockHolder, tryAcquireLock } from "./lock.ts";
import { isKey } from "./manifest.ts";
import { readRefFile } from "./refs.ts";

export interface GcResult {
  /** Keys of the objects removed (or, in a dry run, that would be). */
  readonly removed: string[];
  /** Every path removed (or that would be), relative to the root: "objects/<key>", "refs/<stage>/<digest>.json", ... */
  readonly removedPaths: string[];
  /** Bytes of regular files in the removed paths. */
  readonly freedBytes: number;
  /** Keys whose object or scratch dir was left alone because a live process holds their lock. */
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

/**
 * Removes everything not reachable from `keep`: objects and their memos and scratch dirs, refs to removed keys,
 * all of quarantine/, scratch dirs of committed objects, memos without objects, stale locks and stale tmp/ entries.
 * Keys whose lock a live process holds are skipped. A dry run only reports (it neither removes nor breaks locks).
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
    if (relative.startsWith("objects" + path.sep) && isKey(path.basename(relative)))
      removed.push(path.basename(relative));
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

  const objectKeys = new Set((await fs.readdir(paths.objects)).filter(isKey));
  for (const entry of await sortedEntries(paths.objects)) {
    if (!isKey(entry)) await remove(path.join("objects", entry));
    else if (!keep.has(entry)) {
      await withKeyLock(entry, async () => {
        await remove(path.join("objects", entry));
        await remove(path.join("verified", `${entry}.json`));
        await remove(path.join("scratch", entry));
        objectKeys.delete(entry);
      });
    }
  }
  for (const entry of await sortedEntries(paths.scratch)) {
    const relative = path.join("scratch", entry);
    if (removedPaths.includes(relative)) continue;
    if (!isKey(entry)) await remove(relative);
    else if (!keep.has(entry) || objectKeys.has(entry)) await withKeyLock(entry, () => remove(relative));
  }
  for (const entry of await sortedEntries(paths.verified)) {
    const key = entry.replace(/\.json$/, "");
    if (!objectKeys.has(key) && !removedPaths.includes(path.join("verified", entry)))
      await remove(path.join("verified", entry));
  }
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
