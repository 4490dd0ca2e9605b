/**
 * Where everything lives under a store's root, and the settings every part of the store shares
 * (lookup and verification, commit, refs, locks, gc).
 */
import * as path from "node:path";
import { sha256File } from "./fsutil.ts";
import { assertKey } from "./manifest.ts";

export interface StorePaths {
  readonly root: string;
  readonly objects: string;
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
}

/** A store's paths and resolved options: what its parts (verify.ts, commit.ts, refs.ts, gc.ts) are given. */
export interface StoreLayout {
  readonly paths: StorePaths;
  readonly hashFile: (file: string) => Promise<string>;
  readonly staleTmpAfterMs: number;
  readonly lockPollMs: number;
}

export const storeLayout = (root: string, options: StoreOptions): StoreLayout => {
  const at = (name: string) => path.join(root, name);
  return {
    paths: {
      root,
      objects: at("objects"),
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
  };
};

export const objectDir = (paths: StorePaths, key: string): string => {
  assertKey(key);
  return path.join(paths.objects, key);
};

export const lockPath = (paths: StorePaths, key: string): string => {
  assertKey(key);
  return path.join(paths.locks, `${key}.lock`);
};
