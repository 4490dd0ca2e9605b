/**
 * The artifact store: a content-addressed store of blobs (CAS) plus an action cache of one entry per node key, as in
 * Bazel and Buck2. Blobs are stored once whatever node made them; an entry is published only after its blobs, and
 * verified against them before it is trusted.
 *
 * Layout under the root:
 *   ac/<key>.json                                  the action-cache entry: the node's manifest (key = 64-hex sha256
 *                                                  chosen by the engine), naming each artifact's blob by sha256
 *   cas/sha256/<first two hex>/<sha256>            blobs, read-only, published by hard link (never replaced)
 *   views/<key>/<artifact file>                    symlinks to the entry's blobs: the artifacts under their own names
 *   refs/<stage>/<refDigest>.json                  { nodeId, key, updatedAt } of the last commit per stage + ref digest
 *   locks/<key>.lock                               per-key cross-process locks ({ pid, host, startedAt })
 *   tmp/                                           staging dirs and temp files, named after their owner's host and pid
 *   scratch/<key>/                                 durable per-node scratch (e.g. checkpoints), removed after a commit
 *   quarantine/                                    corrupt entries and blobs moved aside, never trusted
 *   verified/<key>.json                            stat memo of the last full hash check of an entry's blobs
 *
 * Crash safety (kill -9 at any instant): artifact files are written and fsync'd inside a staging dir under tmp/, then
 * hard-linked into cas/ (a blob exists complete or not at all), and the entry is written last, fsync'd under tmp/ and
 * linked into ac/. A crash leaves at worst blobs that no entry names, which gc() sweeps. Anything left in tmp/ by a
 * dead process is ignored, and removed by a later open() or gc(). Views, refs and stat memos are rebuilt or replaced
 * atomically; losing one only costs a rebuild, a missing "why rerun" hint or one re-hash.
 *
 * Concurrency: commits of the same key race safely (the first entry wins, the loser's is dropped; equal blobs are
 * shared). Callers should hold lock(key) around compute + commit, which also keeps gc() away from the key.
 *
 * A store in the layout before the CAS split (objects/<key>/) is migrated by open() (see migrate.ts).
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { ensureView, quarantineBlob } from "./blobs.ts";
import { commit, discard, publishNode, stage, type ArtifactSpec, type Staging } from "./commit.ts";
import { errnoCode, fsyncDir, ifExists, makeDirs } from "./fsutil.ts";
import { cleanTmp, deleteViaTmp, gc, type GcResult } from "./gc.ts";
import {
  blobPath,
  entryPath,
  keyOfEntryFile,
  lockPath,
  storeLayout,
  viewDir,
  type StoreLayout,
  type StoreOptions,
  type StorePaths,
} from "./layout.ts";
import { acquireLock, tryAcquireLock, type LockOptions, type Release } from "./lock.ts";
import { migrateLegacyLayout, type MigrationResult } from "./migrate.ts";
import { assertKey, parseManifest, type Manifest, type ManifestInfo } from "./manifest.ts";
import { readRef, type Ref } from "./refs.ts";
import { memoPath, verifiedManifest, verifyArtifacts } from "./verify.ts";

export { sha256File, writeFileAtomic } from "./fsutil.ts";
export type { ArtifactSpec, Staging } from "./commit.ts";
export type { GcResult } from "./gc.ts";
export type { StoreOptions, StorePaths } from "./layout.ts";
export type { LockHolder, LockOptions, Release } from "./lock.ts";
export type { MigrationResult } from "./migrate.ts";
export { isKey, type ArtifactEntry, type InputRef, type Manifest, type ManifestInfo } from "./manifest.ts";
export type { Ref } from "./refs.ts";

export type Lookup =
  | { readonly status: "hit"; readonly manifest: Manifest; readonly dir: string }
  | { readonly status: "miss" }
  | { readonly status: "corrupt"; readonly reason: string; readonly quarantinedTo: string | undefined };

/**
 * The store at one root; its parts live in layout.ts, blobs.ts, verify.ts, commit.ts, refs.ts, lock.ts, gc.ts and
 * migrate.ts.
 */
export class ArtifactStore {
  readonly paths: StorePaths;
  private readonly layout: StoreLayout;
  /** What open() moved over from the layout before the CAS split, when it found one. */
  migration: MigrationResult | undefined;

  private constructor(root: string, options: StoreOptions) {
    this.layout = storeLayout(root, options);
    this.paths = this.layout.paths;
  }

  /**
   * Opens (creating if needed) the store at `root`, migrates a store in the layout before the CAS split, and removes
   * tmp/ leftovers of dead processes.
   */
  static async open(root: string, options: StoreOptions = {}): Promise<ArtifactStore> {
    const store = new ArtifactStore(path.resolve(root), options);
    const paths: Readonly<Record<keyof StorePaths, string>> = store.paths;
    for (const dir of Object.values(paths)) await makeDirs(dir);
    await cleanTmp(store.layout);
    store.migration = await migrateLegacyLayout(store.layout, (manifest, files) =>
      publishNode(store.layout, manifest, files, undefined, (key) => store.validEntry(key)),
    );
    return store;
  }

  /**
   * The store at `root` for commands that only read (status, inspect, a gc that lists): nothing is created or
   * cleaned, and a root that does not exist yet is an empty store.
   */
  static openReadOnly(root: string, options: StoreOptions = {}): ArtifactStore {
    return new ArtifactStore(path.resolve(root), options);
  }

  /** views/<key>: the directory where a hit's artifacts are found under their file names. */
  artifactDir(key: string): string {
    return viewDir(this.paths, key);
  }

  /** ac/<key>.json: where the entry of `key` is (or would be). */
  entryPath(key: string): string {
    return entryPath(this.paths, key);
  }

  /** cas/sha256/<xx>/<sha256>: where the blob with this content hash is (or would be). */
  blobPath(sha256: string): string {
    return blobPath(this.paths, sha256);
  }

  /**
   * Finds a committed, intact entry. A hit means ac/<key>.json parses and names this key, and every blob it names
   * exists as a regular file with the recorded size and sha256. The hash is skipped for blobs whose (size, mtime,
   * ctime, inode) match verified/<key>.json, written after the last successful hash; `full` forces re-hashing.
   *
   * An entry that is invalid or names a missing or wrong blob is corrupt: it is moved to quarantine/ (a wrong blob
   * too) and a one-line reason returned, so the next lookup is a miss.
   */
  async lookup(key: string, options: { readonly full?: boolean } = {}): Promise<Lookup> {
    return (
      (options.full === true ? undefined : this.lookupVerified(key)) ?? this.lookupChecked(key, options.full ?? false)
    );
  }

  /** lookup's common case, synchronously: a hit whose every file's stat equals its memo, else undefined. */
  lookupVerified(key: string): Lookup | undefined {
    const manifest = verifiedManifest(this.layout, key);
    return manifest === undefined ? undefined : { status: "hit", manifest, dir: this.artifactDir(key) };
  }

  /** lookup without the fast path: reads, verifies (hashing what the memo does not vouch for) and quarantines. */
  async lookupChecked(key: string, full: boolean): Promise<Lookup> {
    let text: string | undefined;
    try {
      text = await ifExists(() => fs.readFile(entryPath(this.paths, key), "utf8"));
    } catch (error) {
      if (errnoCode(error) !== "EISDIR") throw error;
      return this.quarantine(key, "the action-cache entry is not a file");
    }
    if (text === undefined) return { status: "miss" };
    const parsed = parseManifest(text);
    if ("error" in parsed) return this.quarantine(key, parsed.error);
    const { manifest } = parsed;
    if (manifest.key !== key) return this.quarantine(key, `manifest.json names key ${manifest.key}`);
    const problem = await verifyArtifacts(this.layout, manifest, full);
    if (problem !== undefined) {
      if (problem.badBlob !== undefined) await quarantineBlob(this.paths, problem.badBlob);
      return this.quarantine(key, problem.reason);
    }
    return { status: "hit", manifest, dir: await ensureView(this.layout, manifest) };
  }

  /** The entry of `key` if it is intact (a corrupt one is quarantined): who won a race to publish it. */
  private async validEntry(key: string): Promise<Manifest | undefined> {
    const existing = await this.lookup(key);
    return existing.status === "hit" ? existing.manifest : undefined;
  }

  /** Moves ac/<key>.json aside into quarantine/, drops its view and memo, and reports why. */
  private async quarantine(key: string, reason: string): Promise<Lookup> {
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const target = path.join(this.paths.quarantine, `${key}-${stamp}-${randomBytes(4).toString("hex")}`);
    await fs.rm(memoPath(this.layout, key), { force: true });
    await deleteViaTmp(this.layout, this.artifactDir(key));
    try {
      await fs.rename(entryPath(this.paths, key), target);
      await fsyncDir(this.paths.ac);
      return { status: "corrupt", reason, quarantinedTo: target };
    } catch (error) {
      if (errnoCode(error) !== "ENOENT") throw error;
      return { status: "corrupt", reason, quarantinedTo: undefined }; // another process moved it first
    }
  }

  /**
   * Publishes a node whose blobs were verified elsewhere (a fetch from a remote): `files` maps each artifact file name
   * to a complete file holding its bytes. Blobs first, entry last, as commit() does; returns the entry that won.
   */
  async publish(manifest: Manifest, files: Readonly<Record<string, string>>): Promise<Manifest> {
    return publishNode(this.layout, manifest, files, undefined, (key) => this.validEntry(key));
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
   * Publishes a staging dir as the entry of info.key and its blobs (see commit.ts). `refDigest` names the ref (a digest
   * of the node id): the last key committed for it explains later misses.
   */
  async commit(
    staging: Staging,
    info: ManifestInfo,
    artifacts: Readonly<Record<string, ArtifactSpec>>,
    ref: { readonly refDigest: string },
  ): Promise<Manifest> {
    return commit(this.layout, staging, info, artifacts, ref.refDigest, (key) => this.validEntry(key));
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

  /** The entry of `key` as stored, without verifying its blobs; undefined if absent or unreadable. */
  async manifest(key: string): Promise<Manifest | undefined> {
    const text = await ifExists(() => fs.readFile(entryPath(this.paths, key), "utf8")).catch(() => undefined);
    if (text === undefined) return undefined;
    const parsed = parseManifest(text);
    return "manifest" in parsed && parsed.manifest.key === key ? parsed.manifest : undefined;
  }

  /** All entries, unverified (for inspect), plus the files of ac/ that could not be read and why. */
  async list(): Promise<{ manifests: Manifest[]; unreadable: Array<{ entry: string; reason: string }> }> {
    const manifests: Manifest[] = [];
    const unreadable: Array<{ entry: string; reason: string }> = [];
    for (const entry of (await fs.readdir(this.paths.ac)).sort()) {
      const key = keyOfEntryFile(entry);
      if (key === undefined) {
        unreadable.push({ entry, reason: "not a cache key" });
        continue;
      }
      let text: string | undefined;
      try {
        text = await ifExists(() => fs.readFile(path.join(this.paths.ac, entry), "utf8"));
      } catch (error) {
        unreadable.push({ entry, reason: (error as Error).message });
        continue;
      }
      if (text === undefined) continue; // removed meanwhile
      const parsed = parseManifest(text);
      if ("error" in parsed) unreadable.push({ entry, reason: parsed.error });
      else if (parsed.manifest.key !== key)
        unreadable.push({ entry, reason: `manifest.json names key ${parsed.manifest.key}` });
      else manifests.push(parsed.manifest);
    }
    return { manifests, unreadable };
  }

  /**
   * Deletes the entry of `key`, its view and its stat memo (e.g. before recomputing it with --force, so the new commit
   * is not dropped in favour of the old entry); its blobs stay until gc. Returns whether an entry was there. Hold
   * lock(key) while calling it.
   */
  async remove(key: string): Promise<boolean> {
    await fs.rm(memoPath(this.layout, key), { force: true });
    await deleteViaTmp(this.layout, this.artifactDir(key));
    return deleteViaTmp(this.layout, entryPath(this.paths, key));
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
