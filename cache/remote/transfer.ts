/**
 * Moving entries and blobs between the local store and a remote: a fetch verifies every blob's sha256 before it enters
 * the local CAS and publishes the entry last, so a wrong or missing remote blob makes the entry a miss, never a hit;
 * an upload puts the blobs first and the entry last, so an interrupted upload leaves no remote entry naming a missing
 * blob. Transfers stream, run a few at a time, and retry transient failures with backoff; a remote that stays down is
 * dropped for the rest of the command with one warning, and the command goes on with the local cache.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { ifExists, sha256File, sleep, tempName } from "../fsutil.ts";
import { parseManifest, type Manifest } from "../manifest.ts";
import type { ArtifactStore } from "../store.ts";
import { redact, RemoteError, type OnBytes, type Remote } from "./remote.ts";

export interface RemoteCacheOptions {
  /** Whether computed nodes are uploaded (`--remote-upload=false`: only read). */
  readonly upload: boolean;
  /** Where the one warning about an unavailable remote (or a rejected entry) goes. */
  readonly warn: (line: string) => void;
  /** Blob transfers at once (default 4). */
  readonly concurrency?: number;
  /** Tries of one request before a transient failure counts (default 4), and the first backoff (default 250 ms). */
  readonly tries?: number;
  readonly backoffMs?: number;
}

export type FetchResult =
  | { readonly status: "hit"; readonly manifest: Manifest; readonly blobs: number; readonly bytes: number }
  | { readonly status: "miss"; readonly reason?: string };

export interface UploadResult {
  readonly uploaded: number;
  readonly present: number;
  readonly bytes: number;
}

/** A progress line of one big blob transfer, e.g. "fetching weights.bin: 45% of 120.0 MiB". */
export type OnProgress = (message: string, fraction: number) => void;

/** Blobs at least this big report their progress. */
const PROGRESS_MIN_BYTES = 8 * 1024 * 1024;

/** Runs `f` over `items`, at most `limit` at once; the first failure is thrown once all started ones settle. */
const forEachLimited = async <A>(items: ReadonlyArray<A>, limit: number, f: (item: A) => Promise<void>) => {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await f(items[next++]!);
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
};

const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

/** Progress callbacks for one blob: throttled to one every 2 s, and none for small blobs. */
const blobProgress = (verb: string, file: string, bytes: number, onProgress?: OnProgress): OnBytes | undefined => {
  if (onProgress === undefined || bytes < PROGRESS_MIN_BYTES) return undefined;
  let last = 0;
  return (done, total) => {
    const now = Date.now();
    if (now - last < 2_000 && done < total) return;
    last = now;
    const fraction = total > 0 ? done / total : 0;
    onProgress(`${verb} ${file}: ${(fraction * 100).toFixed(0)}% of ${mib(total)}`, fraction);
  };
};

/** One command's use of a remote beside the local store (see the module comment). */
export class RemoteCache {
  private disabled = false;
  /** Blobs found wrong on the remote: uploads replace them even though the remote has a blob of that name. */
  private readonly badBlobs = new Set<string>();
  /** Entry texts already read, so that planning and fetching ask the remote once per key. */
  private readonly entryTexts = new Map<string, string | undefined>();

  private constructor(
    readonly remote: Remote,
    private readonly store: ArtifactStore,
    private readonly options: RemoteCacheOptions,
  ) {}

  /**
   * Checks the remote and returns it in use. A configuration failure (missing bucket, refused credentials) throws its
   * RemoteError; an unreachable remote gives the warning and a RemoteCache that is already off.
   */
  static async open(remote: Remote, store: ArtifactStore, options: RemoteCacheOptions): Promise<RemoteCache> {
    const cache = new RemoteCache(remote, store, options);
    await cache.request(() => remote.check());
    return cache;
  }

  get url(): string {
    return this.remote.url;
  }

  /** False once the remote was found down (after the warning). */
  get available(): boolean {
    return !this.disabled;
  }

  get uploads(): boolean {
    return this.options.upload;
  }

  /**
   * Runs one remote request, retrying transient failures with exponential backoff; when they persist, warns once,
   * turns the remote off and returns undefined. A configuration failure is thrown.
   */
  private async request<A>(op: () => Promise<A>): Promise<A | undefined> {
    const tries = this.options.tries ?? 4;
    for (let attempt = 1; !this.disabled; attempt++) {
      try {
        return await op();
      } catch (error) {
        if (!(error instanceof RemoteError) || error.kind === "configuration") throw error;
        if (attempt >= tries) {
          // Concurrent transfers may all give up at once: only the first turns the remote off and warns.
          if (!this.disabled)
            this.options.warn(`warning: ${redact(error.message)}; continuing with the local cache only`);
          this.disabled = true;
          return undefined;
        }
        const base = (this.options.backoffMs ?? 250) * 2 ** (attempt - 1);
        await sleep(base / 2 + Math.random() * base);
      }
    }
    return undefined;
  }

  /** The remote's entry of `key`, if it has a valid one; an entry that fails its schema is rejected with a warning. */
  async entry(key: string): Promise<Manifest | undefined> {
    if (!this.entryTexts.has(key)) this.entryTexts.set(key, await this.request(() => this.remote.getEntry(key)));
    const text = this.entryTexts.get(key);
    if (text === undefined) return undefined;
    const parsed = parseManifest(text);
    const problem = "error" in parsed ? parsed.error : parsed.manifest.key !== key ? "it names another key" : undefined;
    if (problem === undefined && "manifest" in parsed) return parsed.manifest;
    this.entryTexts.set(key, undefined);
    this.options.warn(`warning: remote entry ${key.slice(0, 12)} rejected: ${problem}`);
    return undefined;
  }

  /**
   * Fetches the entry of `key` and its blobs into the local store, verifying each blob before it enters the CAS; a
   * hit only when all of them arrived intact. Blobs the local CAS already holds are not transferred.
   */
  async fetch(key: string, onProgress?: OnProgress): Promise<FetchResult> {
    const manifest = await this.entry(key);
    if (manifest === undefined) return { status: "miss" };
    const dir = path.join(this.store.paths.tmp, tempName("fetch"));
    await fs.mkdir(dir);
    try {
      const files: Record<string, string> = {};
      let problem: string | undefined;
      let blobs = 0;
      let bytes = 0;
      const artifacts = Object.entries(manifest.artifacts);
      await forEachLimited(artifacts, this.options.concurrency ?? 4, async ([name, a]) => {
        const local = this.store.blobPath(a.sha256);
        const present = await ifExists(() => fs.stat(local));
        if (present?.size === a.bytes && (await sha256File(local)) === a.sha256) {
          files[a.file] = local; // shared with another local entry: nothing to transfer
          return;
        }
        const file = path.join(dir, a.file);
        const got = await this.request(() =>
          this.remote.getBlob(a.sha256, file, blobProgress("fetching", a.file, a.bytes, onProgress)),
        );
        if (got === undefined) problem ??= "the remote became unavailable";
        else if (!got) problem ??= `its blob of artifact '${name}' is missing on the remote`;
        else if ((await fs.stat(file)).size !== a.bytes || (await sha256File(file)) !== a.sha256) {
          this.badBlobs.add(a.sha256);
          problem ??= `its blob of artifact '${name}' on the remote does not match sha256 ${a.sha256.slice(0, 12)}`;
        } else {
          files[a.file] = file;
          blobs++;
          bytes += a.bytes;
        }
      });
      if (problem !== undefined) return { status: "miss", reason: `remote entry not used: ${problem}` };
      return { status: "hit", manifest: await this.store.publish(manifest, files), blobs, bytes };
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Uploads a local entry: its blobs the remote lacks (or holds wrong) first, the entry last. Undefined when uploads
   * are off (unless `force`, for push) or the remote is down.
   */
  async upload(manifest: Manifest, options: { force?: boolean; onProgress?: OnProgress } = {}) {
    if ((!this.options.upload && options.force !== true) || this.disabled) return undefined;
    let uploaded = 0;
    let present = 0;
    let bytes = 0;
    let failed = false;
    const blobs = [...new Map(Object.values(manifest.artifacts).map((a) => [a.sha256, a])).values()];
    await forEachLimited(blobs, this.options.concurrency ?? 4, async (a) => {
      if (!this.badBlobs.has(a.sha256) && (await this.request(() => this.remote.hasBlob(a.sha256))) === true) {
        present++;
        return;
      }
      const onBytes = blobProgress("uploading", a.file, a.bytes, options.onProgress);
      const blob = this.store.blobPath(a.sha256);
      const put = await this.request(async () => (await this.remote.putBlob(a.sha256, blob, a.bytes, onBytes), true));
      if (put === undefined) failed = true;
      else {
        this.badBlobs.delete(a.sha256);
        uploaded++;
        bytes += a.bytes;
      }
    });
    if (failed) return undefined; // no entry without every blob
    const text = await fs.readFile(this.store.entryPath(manifest.key), "utf8");
    const put = await this.request(async () => (await this.remote.putEntry(manifest.key, text), true));
    if (put === undefined) return undefined;
    this.entryTexts.set(manifest.key, text);
    return { uploaded, present, bytes } satisfies UploadResult;
  }
}
