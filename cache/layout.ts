/**
 * Where everything lives under a store's root, and the settings every part of the store shares
 * (lookup and verification, commit, refs, locks, gc, migration).
 */
import * as path from "node:path";
import { sha256File } from "./fsutil.ts";
import { assertKey, isKey } from "./manifest.ts";

export interface StorePaths {
  readonly root: string;
  /** The action cache: one entry (today's manifest) per node key, ac/<key>.json. */
  readonly ac: string;
  /** The content-addressed blobs: cas/sha256/<first two hex>/<sha256>. */
  readonly cas: string;
  /** views/<key>/<artifact file>: symlinks to the entry's blobs, so readers see the files under their own names. */
  readonly views: string;
  readonly refs: string;
  readonly locks: string;
  readonly tmp: string;
  readonly scratch: string;
  readonly quarantine: string;
  readonly verified: string;
}

export interface StoreOptions {
  /** Hash function for artifact files (default {@link sha256File}); injectable to observe how much gets re-hashed. */
  readonly hashFile?: (file: string) => Promise<string>;
  /** tmp/ entries of dead processes are removed only once older than this (default 5 minutes). */
  readonly staleTmpAfterMs?: number;
  /** Poll interval while waiting for a lock held by another process (default 150 ms, jittered). */
  readonly lockPollMs?: number;
  /**
   * gc leaves a blob no entry names alone while it is younger than this (default 1 hour): a commit publishes its
   * blobs before its entry, and a blob of a commit in flight must not be swept.
   */
  readonly blobGraceMs?: number;
}

/** A store's paths and resolved options: what its parts (verify.ts, commit.ts, refs.ts, gc.ts) are given. */
export interface StoreLayout {
  readonly paths: StorePaths;
  readonly hashFile: (file: string) => Promise<string>;
  readonly staleTmpAfterMs: number;
  readonly lockPollMs: number;
  readonly blobGraceMs: number;
}

export const storeLayout = (root: string, options: StoreOptions): StoreLayout => {
  const at = (name: string) => path.join(root, name);
  return {
    paths: {
      root,
      ac: at("ac"),
      cas: at(path.join("cas", "sha256")),
      views: at("views"),
      refs: at("refs"),
      locks: at("locks"),
      tmp: at("tmp"),
      scratch: at("scratch"),
      quarantine: at("quarantine"),
      verified: at("verified"),
    },
    hashFile: options.hashFile ?? sha256File,
    staleTmpAfterMs: options.staleTmpAfterMs ?? 5 * 60 * 1000,
    lockPollMs: options.lockPollMs ?? 150,
    blobGraceMs: options.blobGraceMs ?? 60 * 60 * 1000,
  };
};

/** Where a store of the layout before the CAS split kept each node: objects/<key>/ (see migrate.ts). */
export const legacyObjectsDir = (root: string): string => path.join(root, "objects");

/** ac/<key>.json: the action-cache entry of one node key. */
export const entryPath = (paths: StorePaths, key: string): string => {
  assertKey(key);
  return path.join(paths.ac, `${key}.json`);
};

/** The node key an ac/ file name stands for, or undefined for any other name. */
export const keyOfEntryFile = (name: string): string | undefined => {
  const key = name.endsWith(".json") ? name.slice(0, -".json".length) : "";
  return isKey(key) ? key : undefined;
};

/** cas/sha256/<first two hex>/<sha256>: where the blob with this content hash lives. */
export const blobPath = (paths: StorePaths, sha256: string): string => {
  assertKey(sha256); // a sha256 has the same form as a key: 64 lowercase hex digits
  return path.join(paths.cas, sha256.slice(0, 2), sha256);
};

/** views/<key>: the entry's artifacts under their file names (symlinks into cas/). */
export const viewDir = (paths: StorePaths, key: string): string => {
  assertKey(key);
  return path.join(paths.views, key);
};

export const lockPath = (paths: StorePaths, key: string): string => {
  assertKey(key);
  return path.join(paths.locks, `${key}.lock`);
};
