/**
 * Exclusive cross-process file locks that survive kill -9.
 *
 * A lock is the file `<lockPath>` holding `{ pid, host, startedAt }`. It is created by writing the content to a temp
 * file and hard-linking it into place: link() fails with EEXIST if the lock exists, and the lock never appears
 * half-written. A lock whose holder runs on this host and whose pid is dead is stale and gets broken (see
 * {@link breakStaleLock}). Holders on another host cannot be checked and are always waited for.
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
}

export interface LockOptions {
  /** Called when the lock is found held by another live process, once per distinct holder. */
  readonly onWait?: (holderPid: number, holder: LockHolder) => void;
  /** Aborting stops waiting; the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** Poll interval while another process holds the lock (jittered up to 2x). Default 150 ms. */
  readonly pollMs?: number;
}

/** Releases a lock; calling it more than once is harmless. */
export type Release = () => Promise<void>;

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

/**
 * The holder recorded in a lock file with its inode, or undefined if it vanished; unparseable content yields holder
 * undefined.
 */
async function readHolder(
  lockPath: string,
): Promise<{ readonly ino: bigint; readonly holder: LockHolder | undefined } | undefined> {
  return ifExists(async () => {
    const handle = await fs.open(lockPath, "r");
    try {
      const { ino } = await handle.stat({ bigint: true });
      return { ino, holder: parseHolder(await handle.readFile("utf8")) };
    } finally {
      await handle.close();
    }
  });
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null) return undefined;
    const { pid, host, startedAt } = value as Record<string, unknown>;
    return typeof pid === "number" && typeof host === "string" && typeof startedAt === "string"
      ? { pid, host, startedAt }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A holder is stale when it runs on this host and its pid is dead; garbage content (never written by us) is stale too.
 */
const isStale = (holder: LockHolder | undefined): boolean =>
  holder === undefined || (holder.host === hostname() && !isPidAlive(holder.pid));

/** A breaker older than this died while breaking (breaking takes milliseconds); its marker may be removed. */
const DEAD_BREAKER_MS = 10_000;

/**
 * Removes a stale lock. Breakers serialise on a marker file `<lockPath>.break` created with O_EXCL, and the one holding
 * it re-reads the lock before unlinking it: only while the lock is still the very inode judged stale (a dead holder's)
 * is it removed. Nobody else can replace that inode meanwhile (creation fails while it exists, its holder is dead, and
 * other breakers wait for the marker), so two breakers can never remove a live lock. Losers of the marker race simply
 * retry taking the lock.
 */
async function breakStaleLock(lockPath: string, staleIno: bigint, _tempDir: string): Promise<void> {
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
    if (current !== undefined && current.ino === staleIno && isStale(current.holder))
      await fs.rm(lockPath, { force: true });
  } finally {
    await fs.rm(marker, { force: true });
  }
}

/** One attempt to create the lock: returns its inode on success, or the current holder when it is taken. */
async function tryCreate(
  lockPath: string,
  tempDir: string,
): Promise<{ ino: bigint } | { held: { ino: bigint; holder: LockHolder | undefined } }> {
  const temp = path.join(tempDir, tempName("lock"));
  const holder: LockHolder = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
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

function releaser(lockPath: string, ino: bigint, letNextIn: () => void): Release {
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    try {
      const current = await ifExists(() => fs.stat(lockPath, { bigint: true }));
      if (current?.ino === ino) await fs.rm(lockPath, { force: true });
    } finally {
      letNextIn();
    }
  };
}

/**
 * Takes the exclusive lock at `lockPath`, waiting while a live process holds it and breaking it if its holder died.
 * `tempDir` (same filesystem) receives the short-lived temp files; a crash leaves them there for later cleanup.
 */
export async function acquireLock(lockPath: string, tempDir: string, options: LockOptions = {}): Promise<Release> {
  const { signal, onWait, pollMs = 150 } = options;
  const letNextIn = await acquireLocal(lockPath, signal);
  try {
    let reportedHolder: string | undefined;
    for (;;) {
      signal?.throwIfAborted();
      const attempt = await tryCreate(lockPath, tempDir);
      if ("ino" in attempt) return releaser(lockPath, attempt.ino, letNextIn);
      const { ino, holder } = attempt.held;
      if (isStale(holder)) {
        await breakStaleLock(lockPath, ino, tempDir);
        continue;
      }
      if (
        holder !== undefined &&
        onWait !== undefined &&
        reportedHolder !== `${holder.host}:${holder.pid}:${holder.startedAt}`
      ) {
        reportedHolder = `${holder.host}:${holder.pid}:${holder.startedAt}`;
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
 * Takes the lock only if nobody (in this or another live process) holds it; breaks it if its holder died.
 * Returns undefined when it is held.
 */
export async function tryAcquireLock(lockPath: string, tempDir: string): Promise<Release | undefined> {
  if (localQueues.has(lockPath)) return undefined;
  const letNextIn = await acquireLocal(lockPath, undefined); // immediate: the queue was empty
  try {
    for (;;) {
      const attempt = await tryCreate(lockPath, tempDir);
      if ("ino" in attempt) return releaser(lockPath, attempt.ino, letNextIn);
      if (!isStale(attempt.held.holder)) {
        letNextIn();
        return undefined;
      }
      await breakStaleLock(lockPath, attempt.held.ino, tempDir);
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
