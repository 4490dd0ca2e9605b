/**
 * Store-wide leases: what keeps gc from removing an artifact that a live run holds or is about to read.
 *
 * A run holds a lease, the file `leases/<owner>.lease` under the cache root: a first line naming its holder (pid,
 * host, start), then one key per line. Before the run looks a key up (the lookup after which it reads the key's
 * artifacts, or computes it), it appends the key to its lease. gc deletes only while holding the store's gc mutex
 * (`leases/gc.lock`, a cache/lock.ts lock), after reading every live lease under it and keeping their keys; appends
 * take the same mutex. So each key's registration happens either before gc reads the leases (gc keeps the key) or
 * after gc has deleted (the run's lookup then misses and it recomputes the node): an artifact is never deleted between
 * a run's lookup and its reads. A run removes its lease, under the mutex, only after writing its final run record,
 * which gc also reads under the mutex (pipeline/gc-roots.ts).
 *
 * Why not gc taking the per-key locks that runs take while computing a node: a run would have to hold the exclusive
 * lock of every key it reads until it has read it, serialising concurrent runs that share inputs (and an hours-long
 * training node's lock would block every other run's reads of it). A shared lease costs a run one append per key.
 *
 * Liveness: a lease of this host is live while its pid is; one of another host while its file was renewed (touched)
 * within {@link LEASE_TTL_MS}, which its run does every {@link LEASE_RENEW_MS}. gc removes dead leases.
 */
import { hostname } from "node:os";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { Effect, type Scope } from "effect";
import { ifExists, isPidAlive, makeDirs, tempName } from "./fsutil.ts";
import { acquireLock, type Release } from "./lock.ts";
import { StoreError, type StoreService } from "./service.ts";

export const LEASE_RENEW_MS = 30_000;
export const LEASE_TTL_MS = 4 * LEASE_RENEW_MS;
/** The mutex is held for milliseconds by runs, so waiting for it polls often. */
const MUTEX_POLL_MS = 10;

const leasesDir = (root: string) => path.join(root, "leases");

interface Holder {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
}

/** Takes the store's gc mutex (`tmp`: the store's tmp/, for the lock's temp files). */
const acquireMutex = async (root: string, tmp: string): Promise<Release> => {
  await makeDirs(leasesDir(root));
  return acquireLock(path.join(leasesDir(root), "gc.lock"), tmp, { pollMs: MUTEX_POLL_MS });
};

/** Runs `f` holding the store's gc mutex. */
const withMutex = async <A>(root: string, tmp: string, f: () => Promise<A>): Promise<A> => {
  const release = await acquireMutex(root, tmp);
  try {
    return await f();
  } finally {
    await release();
  }
};

/** A run's lease on the store at `root`: {@link Lease.register} before each lookup; released when the run ends. */
export class Lease {
  private readonly registered = new Set<string>();
  private readonly renewal: NodeJS.Timeout;

  private constructor(
    private readonly root: string,
    private readonly tmp: string,
    private readonly file: string,
  ) {
    this.renewal = setInterval(() => {
      const now = new Date();
      fs.utimes(file, now, now).catch(() => {});
    }, LEASE_RENEW_MS);
    this.renewal.unref();
  }

  /** Creates the run's lease file (holding no key yet: it protects nothing until keys are registered). */
  static async take(root: string, tmp: string): Promise<Lease> {
    await makeDirs(leasesDir(root));
    const file = path.join(leasesDir(root), `${tempName()}.lease`);
    const holder: Holder = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
    await fs.writeFile(file, `${JSON.stringify(holder)}\n`, { flag: "wx" });
    return new Lease(root, tmp, file);
  }

  has(key: string): boolean {
    return this.registered.has(key);
  }

  /** Adds keys to the lease (under the gc mutex): gc keeps them from the moment this resolves. */
  async register(keys: Iterable<string>): Promise<void> {
    const fresh = [...new Set(keys)].filter((k) => !this.registered.has(k));
    if (fresh.length === 0) return;
    await withMutex(this.root, this.tmp, () => fs.appendFile(this.file, fresh.map((k) => `${k}\n`).join("")));
    for (const k of fresh) this.registered.add(k);
  }

  /** Ends the lease (under the gc mutex, so a gc in progress has read it or will not see it). */
  async release(): Promise<void> {
    clearInterval(this.renewal);
    await withMutex(this.root, this.tmp, () => fs.rm(this.file, { force: true }));
  }
}

/** Whether a lease's holder may still read: alive on this host, or renewed lately on another. */
const isLive = (holder: Holder | undefined, mtimeMs: number): boolean =>
  holder !== undefined && (holder.host === hostname() ? isPidAlive(holder.pid) : Date.now() - mtimeMs < LEASE_TTL_MS);

/**
 * The keys of every live lease; with `removeDead`, dead leases are removed. Hold the mutex for an answer that stays
 * true until it is released.
 */
const liveLeasedKeys = async (root: string, removeDead: boolean): Promise<Set<string>> => {
  const keys = new Set<string>();
  const dir = leasesDir(root);
  for (const entry of (await ifExists(() => fs.readdir(dir))) ?? []) {
    if (!entry.endsWith(".lease")) continue;
    const file = path.join(dir, entry);
    const read = await ifExists(async () => ({ text: await fs.readFile(file, "utf8"), stats: await fs.stat(file) }));
    if (read === undefined) continue;
    const [first = "", ...lines] = read.text.split("\n");
    let holder: Holder | undefined;
    try {
      holder = JSON.parse(first) as Holder;
    } catch {
      holder = undefined;
    }
    if (!isLive(holder, read.stats.mtimeMs)) {
      if (removeDead) await fs.rm(file, { force: true });
      continue;
    }
    for (const line of lines) if (line !== "") keys.add(line);
  }
  return keys;
};

const storeError = (cause: unknown) =>
  new StoreError({ message: cause instanceof Error ? cause.message : String(cause), cause });

/**
 * Runs `f` holding the store's gc mutex, given the keys live leases hold: what gc must keep besides its roots. No run
 * can register a key (and so start reading one) until `f` has finished.
 */
export const withGcMutex = <A, E, R>(
  store: StoreService,
  f: (leased: ReadonlySet<string>) => Effect.Effect<A, E, R>,
): Effect.Effect<A, E | StoreError, R> =>
  Effect.acquireUseRelease(
    Effect.tryPromise({ try: () => acquireMutex(store.paths.root, store.paths.tmp), catch: storeError }),
    () =>
      Effect.tryPromise({ try: () => liveLeasedKeys(store.paths.root, true), catch: storeError }).pipe(
        Effect.flatMap(f),
      ),
    (release) => Effect.promise(release),
  );

/** The keys live leases hold right now, changing nothing (for a listing: they may change the next moment). */
export const leasedKeys = (store: StoreService): Effect.Effect<ReadonlySet<string>, StoreError> =>
  Effect.tryPromise({ try: () => liveLeasedKeys(store.paths.root, false), catch: storeError });

/**
 * A lease held until the scope closes, and `store` as seen through it: every lookup and lock registers its key first.
 * `register` adds keys in one batch (the plan's, before executing), saving a mutex per key.
 */
export const leasedStore = (
  store: StoreService,
): Effect.Effect<
  {
    readonly register: (keys: Iterable<string>) => Effect.Effect<void, StoreError>;
    readonly store: StoreService;
  },
  StoreError,
  Scope.Scope
> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.tryPromise({ try: () => Lease.take(store.paths.root, store.paths.tmp), catch: storeError }),
      (lease) => Effect.promise(() => lease.release().catch(() => {})),
    ),
    (lease) => {
      const register = (keys: Iterable<string>) =>
        Effect.tryPromise({ try: () => lease.register(keys), catch: storeError });
      const registered = (key: string) => (lease.has(key) ? Effect.void : register([key]));
      return {
        register,
        store: {
          ...store,
          lookup: (key) => Effect.zipRight(registered(key), store.lookup(key)),
          lock: (key, onWait) => Effect.zipRight(registered(key), store.lock(key, onWait)),
        },
      };
    },
  );
