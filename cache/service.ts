/**
 * The artifact store as an Effect service. Every operation is an Effect whose failure is a typed {@link StoreError}
 * (an I/O problem with the cache, carrying the underlying message), not a defect. Lookups keep the store's synchronous
 * fast path: a verified hit costs no thread-pool round trip and no asynchronous resumption.
 */
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { Context, Data, Effect, Exit, Layer } from "effect";
import { ifExists } from "./fsutil.ts";
import { legacyObjectsDir, storeLayout } from "./layout.ts";
import type { Scope } from "effect";
import { openRemote } from "./remote/remote.ts";
import { RemoteCache, type FetchResult, type OnProgress, type UploadResult } from "./remote/transfer.ts";
import {
  ArtifactStore,
  type ArtifactSpec,
  type GcResult,
  type Lookup,
  type Manifest,
  type ManifestInfo,
  type MigrationResult,
  type Ref,
  type Staging,
  type StoreOptions,
  type StorePaths,
} from "./store.ts";

/** A cache operation failed (permissions, disk full, a path that is not a directory): one line, no stack trace. */
export class StoreError extends Data.TaggedError("StoreError")<{
  readonly message: string;
  readonly cause?: unknown;
}> {}

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause));

const attempt = <A>(f: () => Promise<A>): Effect.Effect<A, StoreError> =>
  Effect.tryPromise({ try: f, catch: (cause) => new StoreError({ message: messageOf(cause), cause }) });

export interface StoreService {
  readonly paths: StorePaths;
  /** Where a hit's artifacts are found under their file names (views/<key>). */
  readonly artifactDir: (key: string) => string;
  /** What opening the store migrated from the layout before the CAS split, if it found one. */
  readonly migration: MigrationResult | undefined;
  /** The remote cache in use (--remote), if any: its URL, whether it is reachable, whether runs upload to it. */
  readonly remote: { readonly url: string; readonly available: boolean; readonly uploads: boolean } | undefined;
  /** A verified local hit, a miss, or a corrupt entry (quarantined); see ArtifactStore.lookup. Never asks a remote. */
  readonly lookup: (key: string) => Effect.Effect<Lookup, StoreError>;
  /** The remote's valid entry of `key`; undefined without a remote, when it is down, or when it has none. */
  readonly remoteEntry: (key: string) => Effect.Effect<Manifest | undefined, StoreError>;
  /**
   * Fetches the entry of `key` and its blobs from the remote into the local store, each blob verified (see
   * RemoteCache.fetch); a miss without a remote.
   */
  readonly fetch: (key: string, onProgress?: OnProgress) => Effect.Effect<FetchResult, StoreError>;
  /**
   * Uploads a local entry's blobs, then the entry, when a remote is in use and uploads are on (or `force`, for push);
   * undefined when nothing was uploaded (no remote, uploads off, or the remote went down: that was warned about).
   */
  readonly upload: (
    manifest: Manifest,
    options?: { readonly force?: boolean; readonly onProgress?: OnProgress },
  ) => Effect.Effect<UploadResult | undefined, StoreError>;
  /** The manifest as stored, unverified; undefined when absent or unreadable. */
  readonly manifest: (key: string) => Effect.Effect<Manifest | undefined, StoreError>;
  readonly readRef: (stage: string, refDigest: string) => Effect.Effect<Ref | undefined, StoreError>;
  readonly list: Effect.Effect<
    { manifests: Manifest[]; unreadable: Array<{ entry: string; reason: string }> },
    StoreError
  >;
  /**
   * Holds the key's lock until the scope closes; `onWait` hears of another live holder. Waiting is interruptible:
   * an interrupted wait gives up, and a lock granted at that very moment is released at once.
   */
  readonly lock: (key: string, onWait?: (holderPid: number) => void) => Effect.Effect<void, StoreError, Scope.Scope>;
  /** A staging directory for one node's outputs, discarded when the scope closes with a failure or interruption. */
  readonly stage: (nodeId: string) => Effect.Effect<Staging, StoreError, Scope.Scope>;
  readonly commit: (
    staging: Staging,
    info: ManifestInfo,
    artifacts: Readonly<Record<string, ArtifactSpec>>,
    refDigest: string,
  ) => Effect.Effect<Manifest, StoreError>;
  readonly remove: (key: string) => Effect.Effect<boolean, StoreError>;
  readonly scratchDir: (key: string) => Effect.Effect<string, StoreError>;
  readonly gc: (
    keep: ReadonlySet<string>,
    options: { readonly dryRun: boolean },
  ) => Effect.Effect<GcResult, StoreError>;
}

/** The Effect view of an opened store, and of the remote cache beside it if there is one. */
export const storeService = (store: ArtifactStore, remote?: RemoteCache): StoreService => {
  const acquireLock = (key: string, onWait: ((holderPid: number) => void) | undefined) =>
    Effect.async<() => Promise<void>, StoreError>((resume, signal) => {
      store.lock(key, { signal, ...(onWait === undefined ? {} : { onWait }) }).then(
        (release) => (signal.aborted ? void release() : resume(Effect.succeed(release))),
        (cause: unknown) => {
          if (!signal.aborted) resume(Effect.fail(new StoreError({ message: messageOf(cause), cause })));
        },
      );
    });
  return {
    paths: store.paths,
    artifactDir: (key) => store.artifactDir(key),
    migration: store.migration,
    get remote() {
      return remote === undefined
        ? undefined
        : { url: remote.url, available: remote.available, uploads: remote.uploads };
    },
    remoteEntry: (key) => (remote === undefined ? Effect.succeed(undefined) : attempt(() => remote.entry(key))),
    fetch: (key, onProgress) =>
      remote === undefined ? Effect.succeed({ status: "miss" }) : attempt(() => remote.fetch(key, onProgress)),
    upload: (manifest, options) =>
      remote === undefined ? Effect.succeed(undefined) : attempt(() => remote.upload(manifest, options)),
    lookup: (key) =>
      Effect.suspend(() => {
        const hit = store.lookupVerified(key);
        return hit === undefined ? attempt(() => store.lookupChecked(key, false)) : Effect.succeed(hit);
      }),
    manifest: (key) => attempt(() => store.manifest(key)),
    readRef: (stage, refDigest) => attempt(() => store.readRef(stage, refDigest)),
    list: attempt(() => store.list()),
    lock: (key, onWait) =>
      Effect.asVoid(
        Effect.acquireRelease(Effect.interruptible(acquireLock(key, onWait)), (release) => Effect.promise(release)),
      ),
    stage: (nodeId) =>
      Effect.acquireRelease(
        attempt(() => store.stage(nodeId)),
        (staging, exit) =>
          // A staging dir that cannot be removed is left for a later open() or gc() to clean.
          Exit.isFailure(exit) ? Effect.ignore(attempt(() => store.discard(staging))) : Effect.void,
      ),
    commit: (staging, info, artifacts, refDigest) =>
      attempt(() => store.commit(staging, info, artifacts, { refDigest })),
    remove: (key) => attempt(() => store.remove(key)),
    scratchDir: (key) => attempt(() => store.scratchDir(key)),
    gc: (keep, options) => attempt(() => store.gc(keep, options)),
  };
};

/** A remote cache to use beside the local store: its URL, whether runs upload to it, where its warnings go. */
export interface RemoteSettings {
  readonly url: string;
  readonly upload: boolean;
  readonly warn: (line: string) => void;
}

/**
 * The store at `root`, opened (created if needed, migrated from the layout before the CAS split), with the remote
 * cache at `remote.url` beside it when given. A remote that cannot work as given (unknown scheme, missing bucket,
 * refused credentials) fails with its one-line reason; one that is down only warns.
 */
export const openStore = (
  root: string,
  options: StoreOptions = {},
  remote?: RemoteSettings,
): Effect.Effect<StoreService, StoreError> =>
  Effect.gen(function* () {
    const store = yield* attempt(() => ArtifactStore.open(root, options)).pipe(
      Effect.mapError(
        (e) => new StoreError({ message: `cannot open the cache at ${root}: ${e.message}`, cause: e.cause }),
      ),
    );
    return yield* withRemote(store, remote);
  });

/** The service over `store`, with the remote cache at `remote.url` beside it when given. */
const withRemote = (
  store: ArtifactStore,
  remote: RemoteSettings | undefined,
): Effect.Effect<StoreService, StoreError> =>
  remote === undefined
    ? Effect.succeed(storeService(store))
    : Effect.map(
        attempt(() =>
          openRemote(remote.url).then((opened) =>
            RemoteCache.open(opened, store, { upload: remote.upload, warn: remote.warn }),
          ),
        ),
        (cache) => storeService(store, cache),
      );

/**
 * The store at `root` for a command that only reads: nothing is created (a missing root is an empty store), except
 * the one-time migration of a cache in the layout before the CAS split. A root that is a file, or below one, fails as
 * {@link openStore} would (EEXIST, ENOTDIR), naming the path.
 */
export const openStoreReadOnly = (
  root: string,
  options: StoreOptions = {},
  remote?: RemoteSettings,
): Effect.Effect<StoreService, StoreError> =>
  Effect.gen(function* () {
    const found = yield* attempt(async () => {
      const stats = await ifExists(() => stat(root));
      if (stats !== undefined && !stats.isDirectory())
        throw Object.assign(new Error(`${root} is not a folder`), { code: "EEXIST", path: resolve(root) });
      const present = async (dir: string) => (await ifExists(() => stat(dir))) !== undefined;
      return {
        entries: await present(storeLayout(root, options).paths.ac),
        legacy: await present(legacyObjectsDir(root)),
      };
    }).pipe(
      Effect.mapError(
        (e) => new StoreError({ message: `cannot open the cache at ${root}: ${e.message}`, cause: e.cause }),
      ),
    );
    // A cache in the layout before the CAS split is migrated once, whoever opens it first: read as it is, it would
    // look empty.
    if (found.legacy) return yield* openStore(root, options, remote);
    const service = yield* withRemote(ArtifactStore.openReadOnly(root, options), remote);
    return found.entries ? service : { ...service, list: Effect.succeed({ manifests: [], unreadable: [] }) };
  });

/** The artifact store the engine (planner, executor, commands) works on. */
export class Store extends Context.Tag("pipeline/Store")<Store, StoreService>() {
  /** An already opened store (tests, benchmarks). */
  static readonly from = (store: ArtifactStore, remote?: RemoteCache): Layer.Layer<Store> =>
    Layer.succeed(Store, storeService(store, remote));
}
