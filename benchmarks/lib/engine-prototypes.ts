/**
 * Prototypes of two engine changes, applied to one ArtifactStore instance from outside so their gain can be measured
 * without editing pipeline/ or cache/:
 *
 * - `withSyncLookupFastPath`: ArtifactStore.lookup's common case (manifest present and valid, every artifact's stat
 *   equal to its verified/ memo) done with synchronous fs calls. Each `fs.promises` call costs a thread-pool round
 *   trip (readFile is four of them: open, fstat, read, close); the sync calls on small, cached files cost
 *   microseconds. Anything off the fast path falls back to the store's own lookup, which then reports, re-hashes or
 *   quarantines exactly as today.
 * - `withLookupsFrom`: the executor reusing the plan's lookups instead of repeating them for every cached node.
 */
import { lstatSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { parseManifest } from "../../cache/manifest.ts";
import type { ArtifactStore, Lookup } from "../../cache/store.ts";
import type { Plan } from "../../pipeline/plan.ts";

interface Stamp {
  readonly sha256: string;
  readonly size: string;
  readonly mtimeNs: string;
  readonly ctimeNs: string;
  readonly ino: string;
}

const readIfExists = (file: string): string | undefined => {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
};

/** A hit found with synchronous fs calls, or undefined when the slow path must decide (miss, corrupt, memo stale). */
export const syncLookupHit = (store: ArtifactStore, key: string): Lookup | undefined => {
  const dir = store.objectDir(key);
  const text = readIfExists(path.join(dir, "manifest.json"));
  if (text === undefined) return undefined;
  const parsed = parseManifest(text);
  if ("error" in parsed || parsed.manifest.key !== key) return undefined;
  const memoText = readIfExists(path.join(store.paths.verified, `${key}.json`));
  if (memoText === undefined) return undefined;
  let memo: { key?: unknown; files?: Record<string, Stamp> };
  try {
    memo = JSON.parse(memoText) as typeof memo;
  } catch {
    return undefined;
  }
  if (memo.key !== key || typeof memo.files !== "object" || memo.files === null) return undefined;
  for (const entry of Object.values(parsed.manifest.artifacts)) {
    const stats = lstatSync(path.join(dir, entry.file), { bigint: true, throwIfNoEntry: false });
    const stamp = memo.files[entry.file];
    if (stats === undefined || !stats.isFile() || stamp === undefined) return undefined;
    const same =
      stamp.sha256 === entry.sha256 &&
      stamp.size === String(stats.size) &&
      stats.size === BigInt(entry.bytes) &&
      stamp.mtimeNs === String(stats.mtimeNs) &&
      stamp.ctimeNs === String(stats.ctimeNs) &&
      stamp.ino === String(stats.ino);
    if (!same) return undefined;
  }
  return { status: "hit", manifest: parsed.manifest, dir };
};

/** Patches `store.lookup` to try the synchronous fast path first (full checks still take the store's own path). */
export const withSyncLookupFastPath = (store: ArtifactStore): ArtifactStore => {
  const original = store.lookup.bind(store);
  store.lookup = async (key, options = {}) => (options.full === true ? undefined : syncLookupHit(store, key)) ?? original(key, options);
  return store;
};

/** Patches `store.lookup` to answer the plan's cached keys from the plan (as the executor could if it were given it). */
export const withLookupsFrom = (store: ArtifactStore, plan: Plan): ArtifactStore => {
  const known = new Map<string, Lookup>();
  for (const entry of plan.entries.values()) {
    if (entry.status === "cached") known.set(entry.key, { status: "hit", manifest: entry.manifest, dir: store.objectDir(entry.key) });
  }
  const original = store.lookup.bind(store);
  store.lookup = async (key, options = {}) => (options.full === true ? undefined : known.get(key)) ?? original(key, options);
  return store;
};

/**
 * Both prototypes for a whole process, installed on the class: the synchronous fast path, and each hit remembered
 * for the rest of the process, so the executor's second lookup of a node the plan found costs nothing.
 */
export const installProcessWidePrototypes = (storeClass: typeof ArtifactStore): void => {
  const original = storeClass.prototype.lookup;
  const hits = new Map<string, Lookup>();
  storeClass.prototype.lookup = async function (this: ArtifactStore, key: string, options: { readonly full?: boolean } = {}) {
    if (options.full === true) return original.call(this, key, options);
    const hit = hits.get(key) ?? syncLookupHit(this, key) ?? (await original.call(this, key, options));
    if (hit.status === "hit") hits.set(key, hit);
    return hit;
  };
};
