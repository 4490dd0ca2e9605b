/**
 * The content-addressed artifact store: one directory per node key, published atomically, verified before it is trusted.
 *
 * Layout under the root:
 *   objects/<key>/manifest.json + artifact files   a committed node (key = 64-hex sha256 chosen by the engine)
 *   refs/<stage>/<refDigest>.json                  { nodeId, key, updatedAt }: the last key committed for a stage + ref digest
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
import { lstatSync, readFileSync, type BigIntStats } from "node:fs";
import * as fs from "node:fs/promises";
import { hostname } from "node:os";
import * as path from "node:path";
import {
  diskBytes,
  errnoCode,
  fsyncDir,
  HOST_TAG,
  ifExists,
  isPidAlive,
  parseTempName,
  sha256File,
  tempName,
  writeFileAtomic,
} from "./fsutil.ts";
import { acquireLock, lockHolder, tryAcquireLock, type LockOptions, type Release } from "./lock.ts";
import { artifactFileProblem, assertKey, isKey, parseManifest, type ArtifactEntry, type Manifest, type ManifestInfo } from "./manifest.ts";

export { sha256File, writeFileAtomic } from "./fsutil.ts";
export type { LockHolder, LockOptions, Release } from "./lock.ts";
export { isKey, type ArtifactEntry, type InputRef, type Manifest, type ManifestInfo } from "./manifest.ts";

export type Lookup =
  | { readonly status: "hit"; readonly manifest: Manifest; readonly dir: string }
  | { readonly status: "miss" }
  | { readonly status: "corrupt"; readonly reason: string; readonly quarantinedTo: string | undefined };

/** A private directory under tmp/ where one node writes its outputs before commit() publishes them. */
export interface Staging {
  readonly dir: string;
  readonly nodeId: string;
}

/** What the producer declares about one output file written into the staging dir. */
export interface ArtifactSpec {
  /** File name inside the staging dir (a single path segment). */
  readonly file: string;
  readonly kind: "table" | "file";
  readonly rows?: number;
  readonly schema?: unknown;
}

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

export interface GcResult {
  /** Keys of the objects removed (or, in a dry run, that would be). */
  readonly removed: string[];
  /** Every path removed (or that would be), relative to the root: "objects/<key>", "refs/<stage>/<digest>.json", "quarantine/...", ... */
  readonly removedPaths: string[];
  /** Bytes of regular files in the removed paths. */
  readonly freedBytes: number;
  /** Keys whose object or scratch dir was left alone because a live process holds their lock. */
  readonly skipped: string[];
}

/** One artifact file's identity at the time its hash was last checked (git-index style). */
interface StatStamp {
  readonly sha256: string;
  readonly size: string;
  readonly mtimeNs: string;
  readonly ctimeNs: string;
  readonly ino: string;
}

interface StatMemo {
  readonly key: string;
  /** By artifact file name. */
  readonly files: Readonly<Record<string, StatStamp>>;
}

const stampOf = (sha256: string, stats: BigIntStats): StatStamp => ({
  sha256,
  size: String(stats.size),
  mtimeNs: String(stats.mtimeNs),
  ctimeNs: String(stats.ctimeNs),
  ino: String(stats.ino),
});

const sameStamp = (a: StatStamp | undefined, b: StatStamp): boolean =>
  a !== undefined && a.sha256 === b.sha256 && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;

/** verified/<key>.json's text as a memo of this key, or undefined (an unreadable memo only costs a re-hash). */
const parseMemo = (key: string, text: string): StatMemo | undefined => {
  try {
    const memo = JSON.parse(text) as StatMemo;
    return memo.key === key && typeof memo.files === "object" && memo.files !== null ? memo : undefined;
  } catch {
    return undefined;
  }
};

/** A small file's text, or undefined on any error: for the fast path, which leaves every failure to the full path. */
const readFileOrUndefined = (file: string): string | undefined => {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
};

/** A stage name or params digest as one file name: percent-encoded, and never "", "." or "..". */
function pathSegment(what: string, value: string): string {
  const segment = encodeURIComponent(value);
  if (segment === "" || segment === "." || segment === ".." || segment.length > 200) {
    throw new Error(`invalid ${what} ${JSON.stringify(value)} for a cache path`);
  }
  return segment;
}

const ONE_DAY_MS = 24 * 60 * 60 * 1000;

export class ArtifactStore {
  readonly paths: StorePaths;
  private readonly hashFile: (file: string) => Promise<string>;
  private readonly staleTmpAfterMs: number;
  private readonly lockPollMs: number;

  private constructor(root: string, options: StoreOptions) {
    const at = (name: string) => path.join(root, name);
    this.paths = {
      root,
      objects: at("objects"),
      refs: at("refs"),
      locks: at("locks"),
      tmp: at("tmp"),
      scratch: at("scratch"),
      quarantine: at("quarantine"),
      verified: at("verified"),
    };
    this.hashFile = options.hashFile ?? sha256File;
    this.staleTmpAfterMs = options.staleTmpAfterMs ?? 5 * 60 * 1000;
    this.lockPollMs = options.lockPollMs ?? 150;
  }

  /** Opens (creating if needed) the store at `root`, and removes tmp/ leftovers of dead processes. */
  static async open(root: string, options: StoreOptions = {}): Promise<ArtifactStore> {
    const store = new ArtifactStore(path.resolve(root), options);
    for (const dir of Object.values(store.paths)) await fs.mkdir(dir, { recursive: true });
    await store.cleanTmp();
    return store;
  }

  objectDir(key: string): string {
    assertKey(key);
    return path.join(this.paths.objects, key);
  }

  /**
   * Finds a committed, intact object. A hit means manifest.json parses and names this key, and every artifact exists as a
   * regular file with the recorded size and sha256. The hash is skipped for files whose (size, mtime, ctime, inode) match
   * verified/<key>.json, written after the last successful hash; `full` forces re-hashing every file.
   *
   * Anything else found in objects/<key> (missing or invalid manifest.json included) is corrupt: the directory is moved to
   * quarantine/ and a one-line reason returned, so the next lookup is a miss.
   */
  async lookup(key: string, options: { readonly full?: boolean } = {}): Promise<Lookup> {
    if (options.full !== true) {
      const hit = this.verifiedHit(key);
      if (hit !== undefined) return hit;
    }
    const dir = this.objectDir(key);
    let text: string | undefined;
    try {
      text = await ifExists(() => fs.readFile(path.join(dir, "manifest.json"), "utf8"));
    } catch (error) {
      if (errnoCode(error) !== "ENOTDIR") throw error;
      return this.quarantine(key, "objects entry is not a directory");
    }
    if (text === undefined) {
      return (await ifExists(() => fs.lstat(dir))) === undefined ? { status: "miss" } : this.quarantine(key, "manifest.json is missing");
    }
    const parsed = parseManifest(text);
    if ("error" in parsed) return this.quarantine(key, parsed.error);
    const { manifest } = parsed;
    if (manifest.key !== key) return this.quarantine(key, `manifest.json names key ${manifest.key}`);
    const problem = await this.verifyArtifacts(dir, manifest, options.full ?? false);
    return problem === undefined ? { status: "hit", manifest, dir } : this.quarantine(key, problem);
  }

  /**
   * lookup's common case with synchronous fs calls: a valid manifest naming this key, and every artifact a regular file
   * of the recorded size whose stat equals its verified/ memo, which is exactly when the full path below would hash
   * nothing and write nothing. Anything else (missing, corrupt, memo absent or stale, an fs error) returns undefined
   * and the full path decides, re-hashes or quarantines. Each fs.promises call is a thread-pool round trip (readFile is
   * four); for these small, page-cached files the sync calls take microseconds, which makes planning 3-5x faster.
   */
  private verifiedHit(key: string): Lookup | undefined {
    const dir = this.objectDir(key);
    const text = readFileOrUndefined(path.join(dir, "manifest.json"));
    if (text === undefined) return undefined;
    const parsed = parseManifest(text);
    if ("error" in parsed || parsed.manifest.key !== key) return undefined;
    const memoText = readFileOrUndefined(this.memoPath(key));
    const memo = memoText === undefined ? undefined : parseMemo(key, memoText);
    if (memo === undefined) return undefined;
    for (const entry of Object.values(parsed.manifest.artifacts)) {
      let stats: BigIntStats | undefined;
      try {
        stats = lstatSync(path.join(dir, entry.file), { bigint: true, throwIfNoEntry: false });
      } catch {
        return undefined;
      }
      if (stats === undefined || !stats.isFile() || stats.size !== BigInt(entry.bytes)) return undefined;
      if (!sameStamp(memo.files[entry.file], stampOf(entry.sha256, stats))) return undefined;
    }
    return { status: "hit", manifest: parsed.manifest, dir };
  }

  /** The reason the object's artifacts are not intact, or undefined; refreshes the stat memo after hashing. */
  private async verifyArtifacts(dir: string, manifest: Manifest, full: boolean): Promise<string | undefined> {
    const memo = full ? undefined : await this.readMemo(manifest.key);
    const stamps: Record<string, StatStamp> = {};
    let hashed = false;
    for (const [name, entry] of Object.entries(manifest.artifacts)) {
      const label = `artifact '${name}' (${entry.file})`;
      const stats = await ifExists(() => fs.lstat(path.join(dir, entry.file), { bigint: true }));
      if (stats === undefined) return `${label} is missing`;
      if (!stats.isFile()) return `${label} is not a regular file`;
      if (stats.size !== BigInt(entry.bytes)) return `${label}: size expected ${entry.bytes} bytes, found ${stats.size}`;
      const stamp = stampOf(entry.sha256, stats); // taken before hashing: a write during the hash makes the memo miss next time
      stamps[entry.file] = stamp;
      if (sameStamp(memo?.files[entry.file], stamp)) continue;
      const actual = await this.hashFile(path.join(dir, entry.file));
      if (actual !== entry.sha256) return `${label}: sha256 expected ${entry.sha256}, found ${actual}`;
      hashed = true;
    }
    if (hashed || memo === undefined) await this.writeMemo({ key: manifest.key, files: stamps });
    return undefined;
  }

  private memoPath(key: string): string {
    return path.join(this.paths.verified, `${key}.json`);
  }

  private async readMemo(key: string): Promise<StatMemo | undefined> {
    const text = await ifExists(() => fs.readFile(this.memoPath(key), "utf8"));
    return text === undefined ? undefined : parseMemo(key, text);
  }

  private async writeMemo(memo: StatMemo): Promise<void> {
    try {
      await writeFileAtomic(this.memoPath(memo.key), JSON.stringify(memo), { tempDir: this.paths.tmp });
    } catch {
      // The memo is an optimisation; failing to write it (read-only cache, full disk) must not fail a lookup.
    }
  }

  /** Moves objects/<key> aside into quarantine/ and reports why. */
  private async quarantine(key: string, reason: string): Promise<Lookup> {
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const target = path.join(this.paths.quarantine, `${key}-${stamp}-${randomBytes(4).toString("hex")}`);
    await fs.rm(this.memoPath(key), { force: true });
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
    const dir = path.join(this.paths.tmp, tempName(nodeId));
    await fs.mkdir(dir);
    return { dir, nodeId };
  }

  /** Drops a staging dir and everything in it. */
  async discard(staging: Staging): Promise<void> {
    this.assertStaging(staging);
    await fs.rm(staging.dir, { recursive: true, force: true });
  }

  private assertStaging(staging: Staging): void {
    if (path.dirname(staging.dir) !== this.paths.tmp) throw new Error(`${staging.dir} is not a staging dir of the store at ${this.paths.root}`);
  }

  /**
   * Publishes a staging dir as objects/<info.key>. The staging dir must contain exactly the declared artifact files.
   * Each file is fsync'd and hashed, manifest.json written and fsync'd, the dir fsync'd and renamed into objects/ in one
   * atomic step. If a valid object with this key already exists (another process won the race), ours is discarded and
   * theirs returned. Afterwards the stat memo and refs/<stage>/<refDigest>.json are written and scratch/<key> is removed.
   * `refDigest` names the ref (e.g. a digest of the node's params): the last key committed for it explains later misses.
   */
  async commit(
    staging: Staging,
    info: ManifestInfo,
    artifacts: Readonly<Record<string, ArtifactSpec>>,
    ref: { readonly refDigest: string },
  ): Promise<Manifest> {
    assertKey(info.key);
    this.assertStaging(staging);
    await this.checkStagingContents(staging, artifacts);

    const entries: Record<string, ArtifactEntry> = {};
    const stamps: Record<string, StatStamp> = {};
    for (const [name, spec] of Object.entries(artifacts)) {
      const file = path.join(staging.dir, spec.file);
      const handle = await fs.open(file, "r");
      let stats: BigIntStats;
      try {
        await handle.sync();
        stats = await handle.stat({ bigint: true });
      } finally {
        await handle.close();
      }
      const sha256 = await this.hashFile(file);
      stamps[spec.file] = stampOf(sha256, stats);
      entries[name] = {
        file: spec.file,
        bytes: Number(stats.size),
        sha256,
        kind: spec.kind,
        ...(spec.rows === undefined ? {} : { rows: spec.rows }),
        ...(spec.schema === undefined ? {} : { schema: spec.schema }),
      };
    }
    const built: Manifest = {
      formatVersion: 1,
      key: info.key,
      nodeId: info.nodeId,
      stage: info.stage,
      version: info.version,
      params: info.params,
      inputs: info.inputs,
      artifacts: entries,
      startedAt: info.startedAt,
      finishedAt: info.finishedAt,
      durationMs: info.durationMs,
      tool: info.tool,
      runtime: info.runtime,
    };
    const text = JSON.stringify(built, null, 2) + "\n";
    const checked = parseManifest(text); // never publish what lookup would reject
    if ("error" in checked) throw new Error(`cannot commit ${info.nodeId}: ${checked.error}`);
    const manifestHandle = await fs.open(path.join(staging.dir, "manifest.json"), "wx");
    try {
      await manifestHandle.writeFile(text);
      await manifestHandle.sync();
    } finally {
      await manifestHandle.close();
    }
    await fsyncDir(staging.dir);

    const { manifest, won } = await this.publish(staging, checked.manifest);
    if (won) await this.writeMemo({ key: manifest.key, files: stamps });
    await this.writeRef(info.stage, ref.refDigest, { nodeId: info.nodeId, key: info.key, updatedAt: new Date().toISOString() });
    await fs.rm(path.join(this.paths.scratch, info.key), { recursive: true, force: true });
    return manifest;
  }

  /** Throws unless the staging dir holds exactly the declared artifacts, as regular files with valid, distinct names. */
  private async checkStagingContents(staging: Staging, artifacts: Readonly<Record<string, ArtifactSpec>>): Promise<void> {
    const declared = new Set<string>();
    for (const [name, spec] of Object.entries(artifacts)) {
      const problem = artifactFileProblem(spec.file);
      if (problem !== undefined) throw new Error(`artifact '${name}' of ${staging.nodeId}: ${problem}`);
      if (declared.has(spec.file)) throw new Error(`artifact '${name}' of ${staging.nodeId}: file ${spec.file} is declared twice`);
      declared.add(spec.file);
      const stats = await ifExists(() => fs.lstat(path.join(staging.dir, spec.file)));
      if (stats === undefined || !stats.isFile()) {
        throw new Error(`artifact '${name}' of ${staging.nodeId}: ${spec.file} was not written as a regular file in ${staging.dir}`);
      }
    }
    const undeclared = (await fs.readdir(staging.dir)).filter((entry) => !declared.has(entry));
    if (undeclared.length > 0) throw new Error(`${staging.nodeId} left undeclared files in its staging dir: ${undeclared.join(", ")}`);
  }

  /** Renames the staging dir to objects/<key>; if a valid object is already there, keeps that one instead. */
  private async publish(staging: Staging, manifest: Manifest): Promise<{ manifest: Manifest; won: boolean }> {
    const target = this.objectDir(manifest.key);
    for (let attempt = 1; ; attempt++) {
      try {
        await fs.rename(staging.dir, target);
        await fsyncDir(this.paths.objects);
        return { manifest, won: true };
      } catch (error) {
        const code = errnoCode(error);
        if ((code !== "ENOTEMPTY" && code !== "EEXIST" && code !== "ENOTDIR") || attempt >= 3) throw error;
      }
      const existing = await this.lookup(manifest.key); // a corrupt one gets quarantined, freeing the name
      if (existing.status === "hit") {
        await this.discard(staging);
        return { manifest: existing.manifest, won: false };
      }
    }
  }

  private refPath(stage: string, refDigest: string): string {
    return path.join(this.paths.refs, pathSegment("stage", stage), `${pathSegment("ref digest", refDigest)}.json`);
  }

  private async writeRef(stage: string, refDigest: string, ref: { nodeId: string; key: string; updatedAt: string }): Promise<void> {
    const file = this.refPath(stage, refDigest);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, JSON.stringify(ref) + "\n", { tempDir: this.paths.tmp });
  }

  /** The last key committed for this stage + ref digest (to explain why a node reruns), or undefined. */
  async readRef(stage: string, refDigest: string): Promise<{ nodeId: string; key: string; updatedAt: string } | undefined> {
    const text = await ifExists(() => fs.readFile(this.refPath(stage, refDigest), "utf8"));
    if (text === undefined) return undefined;
    try {
      const { nodeId, key, updatedAt } = JSON.parse(text) as Record<string, unknown>;
      return typeof nodeId === "string" && typeof key === "string" && isKey(key) && typeof updatedAt === "string"
        ? { nodeId, key, updatedAt }
        : undefined;
    } catch {
      return undefined;
    }
  }

  /** Exclusive per-key lock across processes and within this one; a lock left by a dead process is broken. */
  async lock(key: string, options: LockOptions = {}): Promise<Release> {
    return acquireLock(this.lockPath(key), this.paths.tmp, { pollMs: this.lockPollMs, ...options });
  }

  /** The per-key lock if it is free right now (stale locks are broken), else undefined. */
  async tryLock(key: string): Promise<Release | undefined> {
    return tryAcquireLock(this.lockPath(key), this.paths.tmp);
  }

  private lockPath(key: string): string {
    assertKey(key);
    return path.join(this.paths.locks, `${key}.lock`);
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
    const text = await ifExists(() => fs.readFile(path.join(this.objectDir(key), "manifest.json"), "utf8")).catch(() => undefined);
    if (text === undefined) return undefined;
    const parsed = parseManifest(text);
    return "manifest" in parsed && parsed.manifest.key === key ? parsed.manifest : undefined;
  }

  /** Manifests of all objects, unverified (for inspect/status), plus the entries of objects/ that could not be read and why. */
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
      else if (parsed.manifest.key !== entry) unreadable.push({ entry, reason: `manifest.json names key ${parsed.manifest.key}` });
      else manifests.push(parsed.manifest);
    }
    return { manifests, unreadable };
  }

  /**
   * Deletes objects/<key> and its stat memo (e.g. before recomputing it with --force, so the new commit is not discarded
   * in favour of the old object). Returns whether an object was there. Hold lock(key) while calling it.
   */
  async remove(key: string): Promise<boolean> {
    await fs.rm(this.memoPath(key), { force: true });
    return this.deleteViaTmp(this.objectDir(key));
  }

  /** Deletes a file or tree by first renaming it into tmp/, so a crash mid-delete leaves garbage in tmp/, not a half-deleted entry. */
  private async deleteViaTmp(target: string): Promise<boolean> {
    const doomed = path.join(this.paths.tmp, tempName("deleted"));
    try {
      await fs.rename(target, doomed);
    } catch (error) {
      if (errnoCode(error) === "ENOENT") return false;
      throw error;
    }
    await fs.rm(doomed, { recursive: true, force: true });
    return true;
  }

  /**
   * Removes tmp/ entries left by dead processes of this host once older than `staleTmpAfterMs` (entries of another
   * host, whose pids cannot be checked, once older than a day). Returns the removed names.
   */
  async cleanTmp(): Promise<string[]> {
    const removed: string[] = [];
    const now = Date.now();
    for (const entry of await fs.readdir(this.paths.tmp)) {
      const full = path.join(this.paths.tmp, entry);
      const stats = await ifExists(() => fs.lstat(full));
      if (stats === undefined) continue;
      const ageMs = now - stats.mtimeMs;
      const owner = parseTempName(entry);
      const ownerGone =
        owner === undefined || (owner.hostTag === HOST_TAG ? !isPidAlive(owner.pid) : ageMs >= ONE_DAY_MS);
      // A dead writer on this host is certain garbage; anything else waits out the grace period first.
      const deadHere = owner !== undefined && owner.hostTag === HOST_TAG && ownerGone;
      if (deadHere || (ageMs >= this.staleTmpAfterMs && ownerGone)) {
        await fs.rm(full, { recursive: true, force: true });
        removed.push(entry);
      }
    }
    return removed;
  }

  /**
   * Removes everything not reachable from `keep`: objects and their memos and scratch dirs, refs to removed keys,
   * all of quarantine/, scratch dirs of committed objects, memos without objects, stale locks and stale tmp/ entries.
   * Keys whose lock a live process holds are skipped. A dry run only reports (it neither removes nor breaks locks).
   */
  async gc(keep: ReadonlySet<string>, options: { readonly dryRun?: boolean } = {}): Promise<GcResult> {
    const dryRun = options.dryRun ?? false;
    const removed: string[] = [];
    const removedPaths: string[] = [];
    const skipped: string[] = [];
    let freedBytes = 0;
    const remove = async (relative: string) => {
      const full = path.join(this.paths.root, relative);
      if ((await ifExists(() => fs.lstat(full))) === undefined) return;
      const bytes = await diskBytes(full);
      if (!dryRun && !(await this.deleteViaTmp(full))) return;
      freedBytes += bytes;
      removedPaths.push(relative);
      if (relative.startsWith("objects" + path.sep) && isKey(path.basename(relative))) removed.push(path.basename(relative));
    };
    /** Runs `f` holding the key's lock, or records the key as skipped if a live process holds it. */
    const withKeyLock = async (key: string, f: () => Promise<void>) => {
      if (dryRun) {
        const holder = await lockHolder(this.lockPath(key));
        const live = holder !== undefined && (holder.host !== hostname() || isPidAlive(holder.pid));
        if (live) skipped.push(key);
        else await f();
        return;
      }
      const release = await this.tryLock(key);
      if (release === undefined) return void skipped.push(key);
      try {
        await f();
      } finally {
        await release();
      }
    };

    const objectKeys = new Set((await fs.readdir(this.paths.objects)).filter(isKey));
    for (const entry of (await fs.readdir(this.paths.objects)).sort()) {
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
    for (const entry of (await fs.readdir(this.paths.scratch)).sort()) {
      const relative = path.join("scratch", entry);
      if (removedPaths.includes(relative)) continue;
      if (!isKey(entry)) await remove(relative);
      else if (!keep.has(entry) || objectKeys.has(entry)) await withKeyLock(entry, () => remove(relative));
    }
    for (const entry of (await fs.readdir(this.paths.verified)).sort()) {
      const key = entry.replace(/\.json$/, "");
      if (!objectKeys.has(key) && !removedPaths.includes(path.join("verified", entry))) await remove(path.join("verified", entry));
    }
    for (const stage of (await fs.readdir(this.paths.refs, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort()) {
      for (const entry of (await fs.readdir(path.join(this.paths.refs, stage))).sort()) {
        const ref = await this.readRefFile(path.join(this.paths.refs, stage, entry));
        if (ref === undefined || !(keep.has(ref.key) || skipped.includes(ref.key))) await remove(path.join("refs", stage, entry));
      }
    }
    for (const entry of (await fs.readdir(this.paths.quarantine)).sort()) await remove(path.join("quarantine", entry));
    if (!dryRun) {
      for (const entry of await fs.readdir(this.paths.locks)) {
        const key = entry.replace(/\.lock$/, "");
        if (isKey(key)) await (await this.tryLock(key))?.(); // breaks a stale lock, leaves a live one
      }
      await this.cleanTmp();
    }
    return { removed, removedPaths, freedBytes, skipped: [...new Set(skipped)] };
  }

  private async readRefFile(file: string): Promise<{ key: string } | undefined> {
    try {
      const { key } = JSON.parse(await fs.readFile(file, "utf8")) as Record<string, unknown>;
      return typeof key === "string" ? { key } : undefined;
    } catch {
      return undefined;
    }
  }
}
