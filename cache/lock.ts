/**
 * Exclusive cross-process file locks that survive kill -9, on a local disk or a filesystem shared between hosts.
 *
 * A lock is the file `<lockPath>` holding its holder `{ pid, host, startedAt, leaseMs }`. It is created by writing the
 * content to a temp file and hard-linking it into place: link() fails with EEXIST if the lock exists (atomic on NFS,
 * Lustre and GPFS alike, unlike flock, which Lustre may not offer), and the lock never appears half-written.
 *
 * The holder keeps a lease: it refreshes the lock file's mtime (the heartbeat) every quarter of `leaseMs`. A lock is
 * stale, and gets broken (see {@link breakStaleLock}), when its content is garbage, when its holder runs on this host
 * and its pid is dead, or when its lease has expired: this waiter has seen the heartbeat unchanged for `leaseMs` on its
 * own clock (which needs no synchronised clocks), or the heartbeat is older than `leaseMs` plus
 * {@link CLOCK_SKEW_MS} by the wall clock (a lock left long ago is broken at once). A pid says nothing on another host,
 * so a holder elsewhere is only ever judged by its lease.
 *
 * Within one process, callers of the same lock queue in memory first, so they are handed the lock in order without
 * polling.
 */
import { hostname } from "node:os";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { errnoCode, ifExists, isPidAlive, sleep, tempName } from "./fsutil.ts";

export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
  /** How long the holder's heartbeat may stand still before another host may break the lock (absent: the default). */
  readonly leaseMs?: number;
}

export interface LockOptions {
  /** Called when the lock is found held by another live process, once per distinct holder. */
  readonly onWait?: (holderPid: number, holder: LockHolder) => void;
  /** Aborting stops waiting; the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** Poll interval while another process holds the lock (jittered up to 2x). Default 150 ms. */
  readonly pollMs?: number;
  /** The lease this process announces when it takes the lock. Default {@link defaultLeaseMs}. */
  readonly leaseMs?: number;
}

/** Releases a lock; calling it more than once is harmless. */
export type Release = () => Promise<void>;

/**
 * The lease of a lock taken without `leaseMs`: PIPELINE_LOCK_LEASE_S seconds, else 2 minutes. It must exceed the
 * longest time a holder's event loop can stall (one synchronous step) and the filesystem's attribute-cache delay.
 */
export const defaultLeaseMs = (): number => {
  const seconds = Number(process.env.PIPELINE_LOCK_LEASE_S);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 120_000;
};

/** How far the hosts' clocks may disagree: a heartbeat older than the lease plus this, by our clock, has expired. */
export const CLOCK_SKEW_MS = 60_000;

/**
 * In-process wait queues by lock path: the promise the last caller waits on, and how many callers hold or await the
 * lock.
 */
const localQueues = new Map<string, { tail: Promise<void>; pending: number }>();

/** Waits for this process's earlier callers of the same lock; resolves to the function that lets the next one in. */
async function acquireLocal(lockPath: string, signal: AbortSignal | undefined): Promise<() => void> {
  const queue = localQueues.get(lockPath) ?? { tail: Promise.resolve(), pending: 0 };
  const previous = queue.tail;
  let resolveOurs!: () => void;
  const ours = new Promise<void>((resolve) => (resolveOurs = resolve));
  queue.tail = previous.then(() => ours);
  queue.pending++;
  localQueues.set(lockPath, queue);
  let done = false;
  const letNextIn = () => {
    if (done) return;
    done = true;
    if (--queue.pending === 0) localQueues.delete(lockPath);
    resolveOurs();
  };
  try {
    await abortable(previous, signal);
  } catch (error) {
    void previous.then(letNextIn); // we leave the queue, but only after our predecessor: order is kept
    throw error;
  }
  return letNextIn;
}

function abortable<A>(promise: Promise<A>, signal: AbortSignal | undefined): Promise<A> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<A>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => (signal.removeEventListener("abort", onAbort), resolve(value)),
      (error: unknown) => (signal.removeEventListener("abort", onAbort), reject(error)),
    );
  });
}

/** A lock file as read: its inode and heartbeat (mtime) identify one holding; holder undefined for garbage content. */
interface HeldLock {
  readonly ino: bigint;
  readonly heartbeatNs: bigint;
  readonly holder: LockHolder | undefined;
}

/** The lock file's holding, or undefined if it vanished. */
async function readHolder(lockPath: string): Promise<HeldLock | undefined> {
  return ifExists(async () => {
    // Opening revalidates the attributes on NFS (close-to-open consistency): the heartbeat read is current.
    const handle = await fs.open(lockPath, "r");
    try {
      const { ino, mtimeNs } = await handle.stat({ bigint: true });
      return { ino, heartbeatNs: mtimeNs, holder: parseHolder(await handle.readFile("utf8")) };
    } finally {
      await handle.close();
    }
  });
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null) return undefined;
    const { pid, host, startedAt, leaseMs } = value as Record<string, unknown>;
    if (typeof pid !== "number" || typeof host !== "string" || typeof startedAt !== "string") return undefined;
    return typeof leaseMs === "number" && leaseMs > 0 ? { pid, host, startedAt, leaseMs } : { pid, host, startedAt };
  } catch {
    return undefined;
  }
}

/** Whether two readings are the same holding with the same heartbeat: nobody refreshed or replaced it in between. */
const sameHolding = (a: HeldLock, b: HeldLock): boolean => a.ino === b.ino && a.heartbeatNs === b.heartbeatNs;

/** A waiter's sighting of a heartbeat: which holding, and when (on its monotonic clock) it was first seen. */
interface Sighting {
  readonly held: HeldLock;
  readonly firstSeenMs: number;
}

/** The sighting after reading `held`: the previous one while the heartbeat stands still, else a fresh one. */
const sight = (previous: Sighting | undefined, held: HeldLock): Sighting =>
  previous !== undefined && sameHolding(previous.held, held) ? previous : { held, firstSeenMs: performance.now() };

/**
 * Whether a holding may be broken: garbage content, a dead pid on this host, or an expired lease (see the module
 * comment). `sighting` is this waiter's observation of the heartbeat, when it has one.
 */
const isStale = (held: HeldLock, sighting: Sighting | undefined): boolean => {
  const { holder } = held;
  if (holder === undefined) return true;
  if (holder.host === hostname()) return !isPidAlive(holder.pid);
  const leaseMs = holder.leaseMs ?? defaultLeaseMs();
  const heartbeatAgeMs = Date.now() - Number(held.heartbeatNs / 1_000_000n);
  if (heartbeatAgeMs > leaseMs + CLOCK_SKEW_MS) return true;
  return (
    sighting !== undefined && sameHolding(sighting.held, held) && performance.now() - sighting.firstSeenMs > leaseMs
  );
};

/** A breaker older than this died while breaking (breaking takes milliseconds); its marker may be removed. */
const DEAD_BREAKER_MS = 10_000;

/**
 * Removes a stale lock. Breakers serialise on a marker file `<lockPath>.break` created with O_EXCL, and the one holding
 * it re-reads the lock before unlinking it: only while the lock is still the very holding judged stale (same inode,
 * heartbeat not refreshed since) is it removed. A dead holder cannot refresh it, creation fails while it exists, and
 * other breakers wait for the marker, so two breakers can never remove a live lock. Losers of the marker race simply
 * retry taking the lock.
 */
async function breakStaleLock(lockPath: string, judged: HeldLock): Promise<void> {
  const marker = `${lockPath}.break`;
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(marker, "wx");
  } catch (error) {
    if (errnoCode(error) !== "EEXIST") throw error;
    const info = await ifExists(() => fs.stat(marker));
    if (info !== undefined && Date.now() - info.mtimeMs > DEAD_BREAKER_MS) await fs.rm(marker, { force: true });
    await sleep(5 + 10 * Math.random());
    return;
  }
  try {
    await handle.writeFile(String(process.pid));
    await handle.close();
    const current = await readHolder(lockPath);
    if (current !== undefined && sameHolding(current, judged)) await fs.rm(lockPath, { force: true });
  } finally {
    await fs.rm(marker, { force: true });
  }
}

/** One attempt to create the lock: returns its inode on success, or the current holding when it is taken. */
async function tryCreate(
  lockPath: string,
  tempDir: string,
  leaseMs: number,
): Promise<{ readonly ino: bigint } | { readonly held: HeldLock }> {
  const temp = path.join(tempDir, tempName("lock"));
  const holder: LockHolder = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), leaseMs };
  // No fsync: other processes see the content once written, and after a power loss every holder is dead anyway
  // (an empty lock file then counts as stale).
  await fs.writeFile(temp, JSON.stringify(holder), { flag: "wx" });
  try {
    const { ino } = await fs.stat(temp, { bigint: true });
    for (;;) {
      try {
        await fs.link(temp, lockPath);
        return { ino };
      } catch (error) {
        if (errnoCode(error) !== "EEXIST") throw error;
      }
      const held = await readHolder(lockPath);
      if (held !== undefined) return { held };
      // released between link() and read: try again at once
    }
  } finally {
    await fs.rm(temp, { force: true });
  }
}

/**
 * Refreshes the heartbeat of our lock every quarter lease until stopped; stops by itself once the file is no longer
 * ours (broken after a stall longer than the lease: the store's commit by rename still keeps the artifact whole).
 */
function startHeartbeat(lockPath: string, ino: bigint, leaseMs: number): () => void {
  let stopped = false;
  const beat = async () => {
    try {
      const current = await ifExists(() => fs.stat(lockPath, { bigint: true }));
      if (current?.ino !== ino) return stop();
      const now = new Date();
      await fs.utimes(lockPath, now, now);
    } catch {
      // a missed beat only brings expiry closer; the next one tries again
    }
  };
  const timer = setInterval(() => void (stopped || beat()), Math.max(10, leaseMs / 4));
  timer.unref();
  const stop = () => {
    stopped = true;
    clearInterval(timer);
  };
  return stop;
}

function releaser(lockPath: string, ino: bigint, leaseMs: number, letNextIn: () => void): Release {
  const stopHeartbeat = startHeartbeat(lockPath, ino, leaseMs);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    stopHeartbeat();
    try {
      const current = await ifExists(() => fs.stat(lockPath, { bigint: true }));
      if (current?.ino === ino) await fs.rm(lockPath, { force: true });
    } finally {
      letNextIn();
    }
  };
}

/**
 * Takes the exclusive lock at `lockPath`, waiting while a live holder keeps it and breaking it once stale.
 * `tempDir` (same filesystem) receives the short-lived temp files; a crash leaves them there for later cleanup.
 */
export async function acquireLock(lockPath: string, tempDir: string, options: LockOptions = {}): Promise<Release> {
  const { signal, onWait, pollMs = 150, leaseMs = defaultLeaseMs() } = options;
  const letNextIn = await acquireLocal(lockPath, signal);
  try {
    let reportedHolder: string | undefined;
    let sighting: Sighting | undefined;
    for (;;) {
      signal?.throwIfAborted();
      const attempt = await tryCreate(lockPath, tempDir, leaseMs);
      if ("ino" in attempt) return releaser(lockPath, attempt.ino, leaseMs, letNextIn);
      const { held } = attempt;
      sighting = sight(sighting, held);
      if (isStale(held, sighting)) {
        await breakStaleLock(lockPath, held);
        continue;
      }
      const { holder } = held;
      const holderId = holder === undefined ? undefined : `${holder.host}:${holder.pid}:${holder.startedAt}`;
      if (holder !== undefined && onWait !== undefined && reportedHolder !== holderId) {
        reportedHolder = holderId;
        onWait(holder.pid, holder);
      }
      await sleep(pollMs * (1 + Math.random()), signal);
    }
  } catch (error) {
    letNextIn();
    throw error;
  }
}

/**
 * Takes the lock only if nobody (in this or another live process) holds it; breaks it if stale (a holder elsewhere
 * only once its heartbeat is older than its lease plus the clock skew). Returns undefined when it is held.
 */
export async function tryAcquireLock(
  lockPath: string,
  tempDir: string,
  leaseMs: number = defaultLeaseMs(),
): Promise<Release | undefined> {
  if (localQueues.has(lockPath)) return undefined;
  const letNextIn = await acquireLocal(lockPath, undefined); // immediate: the queue was empty
  try {
    for (;;) {
      const attempt = await tryCreate(lockPath, tempDir, leaseMs);
      if ("ino" in attempt) return releaser(lockPath, attempt.ino, leaseMs, letNextIn);
      if (!isStale(attempt.held, undefined)) {
        letNextIn();
        return undefined;
      }
      await breakStaleLock(lockPath, attempt.held);
    }
  } catch (error) {
    letNextIn();
    throw error;
  }
}

/** Who holds the lock now (undefined if free or unreadable); does not break anything. */
export async function lockHolder(lockPath: string): Promise<LockHolder | undefined> {
  return (await readHolder(lockPath))?.holder;
}
