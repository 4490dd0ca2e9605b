/**
 * Prototype of an engine change, applied to one ArtifactStore instance from outside so its gain can be measured
 * without editing pipeline/ or cache/:
 *
 * - `withLookupsFrom`: the executor reusing the plan's lookups instead of repeating them for every cached node of a
 *   partly cached run. (A fully cached run already skips the executor, and the store's synchronous fast path, once a
 *   prototype here too, is now ArtifactStore.lookup itself.)
 */
import type { ArtifactStore, Lookup } from "../../cache/store.ts";
import type { Plan } from "../../pipeline/plan.ts";

/** Patches `store.lookupVerified` (lookup's fast path) to answer the plan's cached keys from the plan (as the executor could if it were given it). */
export const withLookupsFrom = (store: ArtifactStore, plan: Plan): ArtifactStore => {
  const known = new Map<string, Lookup>();
  for (const entry of plan.entries.values()) {
    if (entry.status === "cached") known.set(entry.key, { status: "hit", manifest: entry.manifest, dir: store.objectDir(entry.key) });
  }
  const original = store.lookupVerified.bind(store);
  store.lookupVerified = (key) => known.get(key) ?? original(key);
  return store;
};
