/**
 * The content-addressed artifact store: one directory per node key, published atomically, verified before it is
 * trusted.
 *
 * Layout under the root:
 *   objects/<key>/manifest.json + artifact files   a committed node (key = 64-hex sha256 chosen by the engine)
 *   refs/<stage>/<refDigest>.json                  { nodeId, key, updatedAt } of the last commit per stage + ref digest
 *   locks/<key>.lock                               per-key cross-process locks ({ pid, host, startedAt })
 *   tmp/                                           staging dirs and temp files, named after their owner's host and pid
 *   scratch/<key>/                                 durable per-node scratch (e.g. checkpoints), removed after a commit
 *   quarantine/<key>-<timestamp>-<rand>/           corrupt objects moved aside, never trusted
 *   verified/<key>.json                            stat memo of the last full hash check
 *
 * Crash safety (kill -9 at any instant): artifact files and manifest.json are written and fsync'd inside a staging dir
 * under tmp/, which is then renamed to objects/<key> in one step, so an object exists complete or not at all.
 * Anything left in tmp/ by a dead process is ignored, and removed by a later open() or gc(). Refs and stat memos are
 * replaced atomically; if a crash loses one, the only cost is a missing "why rerun" hint or one re-hash.
 *
 * Concurrency: commits of the same key race safely (the first rename wins, the loser's staging is discarded).
 * Callers should hold lock(key) around compute + commit, which also keeps gc() away from the key.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { commit, discard, stage, type ArtifactSpec, type Staging } from "./commit.ts";
import { errnoCode, fsyncDir, ifExists, makeDirs } from "./fsutil.ts";
import { cleanTmp, deleteViaTmp, gc, type GcResult } from "./gc.ts";
import { lockPath, objectDir, storeLayout, type StoreLayout, type StoreOptions, type StorePaths } from "./layout.ts";
import { acquireLock, tryAcquireLock, type LockOptions, type Release } from "./lock.ts";
import { assertKey, isKey, parseManifest, type Manifest, type ManifestInfo } from "./manifest.ts";
import { readRef, type Ref } from "./refs.ts";
import { memoPath, verifiedManifest, verifyArtifacts } from "./verify.ts";

export { sha256File, writeFileAtomic } from "./fsutil.ts";
export type { ArtifactSpec, Staging } from "./commit.ts";
export type { GcResult } from "./gc.ts";
export type { StoreOptions, StorePaths } from "./layout.ts";
export type { LockHolder, LockOptions, Release } from "./lock.ts";
export { isKey, type ArtifactEntry, type InputRef, type Manifest, type ManifestInfo } from "./manifest.ts";
export type { Ref } from "./refs.ts";

export type Lookup =
  | { readonly status: "hit"; readonly manifest: Manifest; readonly dir: string }
  | { readonly status: "miss" }
  | { readonly status: "corrupt"; readonly reason: string; readonly quarantinedTo: string | undefined };

/** The store at one root; its parts live in layout.ts, verify.ts, commit.ts, refs.ts, lock.ts and gc.ts. */
export class ArtifactStore {
  readonly paths: StorePaths;
  private readonly layout: StoreLayout;

  private constructor(root: string, options: StoreOptions) {
    this.layout = storeLayout(root, options);
    this.paths = this.layout.paths;
  }

  /** Opens (creating if needed) the store at `root`, and removes tmp/ leftovers of dead processes. */
  static async open(root: string, options: StoreOptions = {}): Promise<ArtifactStore> {
    const store = new ArtifactStore(path.resolve(root), options);
    const paths: Readonly<Record<keyof StorePaths, string>> = store.paths;
    for (const dir of Object.values(paths)) await makeDirs(dir);
    await cleanTmp(store.layout);
    return store;
  }

  /**
   * The store at `root` for commands that only read (status, inspect, a gc that lists): nothing is created or
   * cleaned, and a root that does not exist yet is an empty store.
   */
  static openReadOnly(root: string, options: StoreOptions = {}): ArtifactStore {
    return new ArtifactStore(path.resolve(root), options);
  }

  objectDir(key: string): string {
    return objectDir(this.paths, key);
  }

  /**
   * Finds a committed, intact object. A hit means manifest.json parses and names this key, and every artifact exists as
   * a regular file with the recorded size and sha256. The hash is skipped for files whose (size, mtime, ctime, inode)
   * match verified/<key>.json, written after the last successful hash; `full` forces re-hashing every file.
   *
   * Anything else found in objects/<key> (missing or invalid manifest.json included) is corrupt: the directory is moved
   * to quarantine/ and a one-line reason returned, so the next lookup is a miss.
   */
  async lookup(key: string, options: { readonly full?: boolean } = {}): Promise<Lookup> {
    return (
      (options.full === true ? undefined : this.lookupVerified(key)) ?? this.lookupChecked(key, options.full ?? false)
    );
  }

  /** lookup's common case, synchronously: a hit whose every file's stat equals its memo, else undefined. */
  lookupVerified(key: string): Lookup | undefined {
    const dir = this.objectDir(key);
    const manifest = verifiedManifest(this.layout, key, dir);
    return manifest === undefined ? undefined : { status: "hit", manifest, dir };
  }

  /** lookup without the fast path: reads, verifies (hashing what the memo does not vouch for) and quarantines. */
  async lookupChecked(key: string, full: boolean): Promise<Lookup> {
    const dir = this.objectDir(key);
    let text: string | undefined;
    try {
      text = await ifExists(() => fs.readFile(path.join(dir, "manifest.json"), "utf8"));
    } catch (error) {
      if (errnoCode(error) !== "ENOTDIR") throw error;
      return this.quarantine(key, "objects entry is not a directory");
    }
    if (text === undefined) {
      return (await ifExists(() => fs.lstat(dir))) === undefined
        ? { status: "miss" }
        : this.quarantine(key, "manifest.json is missing");
    }
    const parsed = parseManifest(text);
    if ("error" in parsed) return this.quarantine(key, parsed.error);
    const { manifest } = parsed;
    if (manifest.key !== key) return this.quarantine(key, `manifest.json names key ${manifest.key}`);
    const problem = await verifyArtifacts(this.layout, dir, manifest, full);
    return problem === undefined ? { status: "hit", manifest, dir } : this.quarantine(key, problem);
  }

  /** Moves objects/<key> aside into quarantine/ and reports why. */
  private async quarantine(key: string, reason: string): Promise<Lookup> {
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const target = path.join(this.paths.quarantine, `${key}-${stamp}-${randomBytes(4).toString("hex")}`);
    await fs.rm(memoPath(this.layout, key), { force: true });
    try {
      await fs.rename(this.objectDir(key), target);
      await fsyncDir(this.paths.objects);
      return { status: "corrupt", reason, quarantinedTo: target };
    } catch (error) {
      if (errnoCode(error) !== "ENOENT") throw error;
      return { status: "corrupt", reason, quarantinedTo: undefined }; // another process moved it first
    }
  }

  /** A fresh, private directory under tmp/ for one node's outputs. */
  async stage(nodeId: string): Promise<Staging> {
    return stage(this.layout, nodeId);
  }

  /** Drops a staging dir and everything in it. */
  async discard(staging: Staging): Promise<void> {
    return discard(this.layout, staging);
  }

  /**
   * Publishes a staging dir as objects/<info.key> (see commit.ts). `refDigest` names the ref (a digest of the node id):
   * the last key committed for it explains later misses.
   */
  async commit(
    staging: Staging,
    info: ManifestInfo,
    artifacts: Readonly<Record<string, ArtifactSpec>>,
    ref: { readonly refDigest: string },
  ): Promise<Manifest> {
    const findValid = async (key: string) => {
      const existing = await this.lookup(key);
      return existing.status === "hit" ? existing.manifest : undefined;
    };
    return commit(this.layout, staging, info, artifacts, ref.refDigest, findValid);
  }

  /** The last key committed for this stage + ref digest (to explain why a node reruns), or undefined. */
  async readRef(stage: string, refDigest: string): Promise<Ref | undefined> {
    return readRef(this.layout, stage, refDigest);
  }

  /** Exclusive per-key lock across processes and within this one; a lock left by a dead process is broken. */
  async lock(key: string, options: LockOptions = {}): Promise<Release> {
    return acquireLock(lockPath(this.paths, key), this.paths.tmp, { pollMs: this.layout.lockPollMs, ...options });
  }

  /** The per-key lock if it is free right now (stale locks are broken), else undefined. */
  async tryLock(key: string): Promise<Release | undefined> {
    return tryAcquireLock(lockPath(this.paths, key), this.paths.tmp);
  }

  /** scratch/<key>/, created if needed: survives crashes (e.g. training checkpoints) and is removed by commit(). */
  async scratchDir(key: string): Promise<string> {
    assertKey(key);
    const dir = path.join(this.paths.scratch, key);
    await fs.mkdir(dir, { recursive: true });
    return dir;
  }

  /** The manifest of objects/<key> as stored, without verifying artifacts; undefined if absent or unreadable. */
  async manifest(key: string): Promise<Manifest | undefined> {
    const file = path.join(this.objectDir(key), "manifest.json");
    const text = await ifExists(() => fs.readFile(file, "utf8")).catch(() => undefined);
    if (text === undefined) return undefined;
    const parsed = parseManifest(text);
    return "manifest" in parsed && parsed.manifest.key === key ? parsed.manifest : undefined;
  }

  /**
   * Manifests of all objects, unverified (for inspect), plus the entries of objects/ that could not be read and why.
   */
  async list(): Promise<{ manifests: Manifest[]; unreadable: Array<{ entry: string; reason: string }> }> {
    const manifests: Manifest[] = [];
    const unreadable: Array<{ entry: string; reason: string }> = [];
    for (const entry of (await fs.readdir(this.paths.objects)).sort()) {
      if (!isKey(entry)) {
        unreadable.push({ entry, reason: "not a cache key" });
        continue;
      }
      let text: string | undefined;
      try {
        text = await ifExists(() => fs.readFile(path.join(this.paths.objects, entry, "manifest.json"), "utf8"));
      } catch (error) {
        unreadable.push({ entry, reason: (error as Error).message });
        continue;
      }
      if (text === undefined) {
        unreadable.push({ entry, reason: "manifest.json is missing" });
        continue;
      }
      const parsed = parseManifest(text);
      if ("error" in parsed) unreadable.push({ entry, reason: parsed.error });
      else if (parsed.manifest.key !== entry)
        unreadable.push({ entry, reason: `manifest.json names key ${parsed.manifest.key}` });
      else manifests.push(parsed.manifest);
    }
    return { manifests, unreadable };
  }

  /**
   * Deletes objects/<key> and its stat memo (e.g. before recomputing it with --force, so the new commit is not
   * discarded in favour of the old object). Returns whether an object was there. Hold lock(key) while calling it.
   */
  async remove(key: string): Promise<boolean> {
    await fs.rm(memoPath(this.layout, key), { force: true });
    return deleteViaTmp(this.layout, this.objectDir(key));
  }

  /** Removes tmp/ entries left by dead processes (see gc.ts); returns the removed names. */
  async cleanTmp(): Promise<string[]> {
    return cleanTmp(this.layout);
  }

  /** Removes everything not reachable from `keep` (see gc.ts); a dry run only reports. */
  async gc(keep: ReadonlySet<string>, options: { readonly dryRun?: boolean } = {}): Promise<GcResult> {
    return gc(this.layout, keep, options.dryRun ?? false);
  }
}
