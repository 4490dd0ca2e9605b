/**
 * The artifact store as an Effect service. Every operation is an Effect whose failure is a typed {@link StoreError}
 * (an I/O problem with the cache, carrying the underlying message), not a defect. Lookups keep the store's synchronous
 * fast path: a verified hit costs no thread-pool round trip and no asynchronous resumption.
 */
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { Context, Data, Effect, Exit, Layer } from "effect";
import { ifExists } from "./fsutil.ts";
import type { Scope } from "effect";
import {
  ArtifactStore,
  type ArtifactSpec,
  type GcResult,
  type Lookup,
  type Manifest,
  type ManifestInfo,
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
  readonly objectDir: (key: string) => string;
  /** A verified hit, a miss, or a corrupt object (quarantined); see ArtifactStore.lookup. */
  readonly lookup: (key: string) => Effect.Effect<Lookup, StoreError>;
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

/** The Effect view of an opened store. */
export const storeService = (store: ArtifactStore): StoreService => {
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
    objectDir: (key) => store.objectDir(key),
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

/** The store at `root`, opened (created if needed). */
export const openStore = (root: string, options: StoreOptions = {}): Effect.Effect<StoreService, StoreError> =>
  attempt(() => ArtifactStore.open(root, options)).pipe(
    Effect.map(storeService),
    Effect.mapError(
      (e) => new StoreError({ message: `cannot open the cache at ${root}: ${e.message}`, cause: e.cause }),
    ),
  );

/**
 * The store at `root` for a command that only reads: nothing is created (a missing root is an empty store). A root
 * that is a file, or below one, fails as {@link openStore} would (EEXIST, ENOTDIR), naming the path.
 */
export const openStoreReadOnly = (root: string, options: StoreOptions = {}): Effect.Effect<StoreService, StoreError> =>
  attempt(async () => {
    const stats = await ifExists(() => stat(root));
    if (stats !== undefined && !stats.isDirectory())
      throw Object.assign(new Error(`${root} is not a folder`), { code: "EEXIST", path: resolve(root) });
    const service = storeService(ArtifactStore.openReadOnly(root, options));
    const empty = (await ifExists(() => stat(service.paths.objects))) === undefined;
    return empty ? { ...service, list: Effect.succeed({ manifests: [], unreadable: [] }) } : service;
  }).pipe(
    Effect.mapError(
      (e) => new StoreError({ message: `cannot open the cache at ${root}: ${e.message}`, cause: e.cause }),
    ),
  );

/** The artifact store the engine (planner, executor, commands) works on. */
export class Store extends Context.Tag("pipeline/Store")<Store, StoreService>() {
  /** An already opened store (tests, benchmarks). */
  static readonly from = (store: ArtifactStore): Layer.Layer<Store> => Layer.succeed(Store, storeService(store));
}
