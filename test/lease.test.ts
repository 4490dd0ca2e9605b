/**
 * Locks and stat memos on a cache shared between hosts: a lock held on another host (another host name in its lease)
 * is judged by its heartbeat alone, and a stat memo vouches only on the host that made it.
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { acquireLock, CLOCK_SKEW_MS, tryAcquireLock } from "../cache/lock.ts";
import { ArtifactStore, sha256File } from "../cache/store.ts";
import { infoFor } from "./fixtures/manifest.ts";

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), "lease-test-"));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const OTHER_HOST = `not-${hostname()}`;

/** Writes a lock as a process on another host holds it, with its heartbeat (the file's mtime) `ageMs` old. */
async function foreignLock(lockPath: string, leaseMs: number, ageMs = 0): Promise<void> {
  const holder = { pid: process.pid, host: OTHER_HOST, startedAt: new Date().toISOString(), leaseMs };
  await fs.writeFile(lockPath, JSON.stringify(holder));
  const beat = new Date(Date.now() - ageMs);
  await fs.utimes(lockPath, beat, beat);
}

/** Refreshes the heartbeat like a live holder, every `everyMs`, until the returned function is called. */
function keepBeating(lockPath: string, everyMs: number): () => void {
  const timer = setInterval(() => {
    const now = new Date();
    fs.utimes(lockPath, now, now).catch(() => {});
  }, everyMs);
  return () => clearInterval(timer);
}

const holderOf = async (lockPath: string) => JSON.parse(await fs.readFile(lockPath, "utf8")) as { host: string };

describe("leases of locks held on another host", () => {
  it("a live holder elsewhere keeps its lock past its lease while it beats; once it stops, the lock is broken", async () => {
    const lockPath = path.join(root, "k.lock");
    const leaseMs = 600;
    await foreignLock(lockPath, leaseMs);
    const stopBeating = keepBeating(lockPath, 100);
    const waits: string[] = [];
    const taking = acquireLock(lockPath, root, { pollMs: 20, onWait: (_, holder) => waits.push(holder.host) });
    let taken = false;
    void taking.then(() => (taken = true));
    await new Promise((resolve) => setTimeout(resolve, 4 * leaseMs));
    expect(taken).toBe(false);
    expect((await holderOf(lockPath)).host).toBe(OTHER_HOST);
    expect(waits).toEqual([OTHER_HOST]);

    stopBeating();
    const stoppedAt = performance.now();
    const release = await taking;
    // Broken only after the heartbeat stood still for a whole lease, as this waiter saw it.
    expect(performance.now() - stoppedAt).toBeGreaterThanOrEqual(leaseMs - 150);
    expect((await holderOf(lockPath)).host).toBe(hostname());
    await release();
    await expect(fs.access(lockPath)).rejects.toThrow();
  });

  it("a lock elsewhere whose heartbeat is older than the lease and the clock skew is broken at once", async () => {
    const lockPath = path.join(root, "k.lock");
    await foreignLock(lockPath, 60_000, 60_000 + CLOCK_SKEW_MS + 5_000);
    const started = performance.now();
    const release = await acquireLock(lockPath, root, { pollMs: 20 });
    expect(performance.now() - started).toBeLessThan(2_000);
    await release();
  });

  it("tryAcquireLock leaves a fresh lease elsewhere alone, even when the pid in it is dead here", async () => {
    const lockPath = path.join(root, "k.lock");
    await foreignLock(lockPath, 60_000);
    const lease = JSON.parse(await fs.readFile(lockPath, "utf8")) as Record<string, unknown>;
    await fs.writeFile(lockPath, JSON.stringify({ ...lease, pid: 2 ** 22 + 12345 })); // no such pid on this host
    expect(await tryAcquireLock(lockPath, root)).toBeUndefined();
    expect((await holderOf(lockPath)).host).toBe(OTHER_HOST);
  });

  it("the holder's heartbeat advances the lock file's mtime while it holds the lock", async () => {
    const lockPath = path.join(root, "k.lock");
    const release = await acquireLock(lockPath, root, { leaseMs: 200 });
    const before = (await fs.stat(lockPath)).mtimeMs;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await fs.stat(lockPath)).mtimeMs).toBeGreaterThan(before);
    expect(JSON.parse(await fs.readFile(lockPath, "utf8"))).toMatchObject({ host: hostname(), leaseMs: 200 });
    await release();
  });
});

describe("stat memos on a shared cache", () => {
  it("a memo made on another host is not trusted: the files are re-hashed and the memo becomes this host's", async () => {
    let hashed = 0;
    const store = await ArtifactStore.open(root, { hashFile: (file) => (hashed++, sha256File(file)) });
    const key = createHash("sha256").update(randomBytes(16)).digest("hex");
    const staging = await store.stage("stage-a[x]");
    await fs.writeFile(path.join(staging.dir, "a.bin"), randomBytes(1000));
    await store.commit(
      staging,
      infoFor(key, "stage-a[x]", "stage-a"),
      { "a.bin": { file: "a.bin", kind: "file" } },
      { refDigest: "digest" },
    );
    const memoPath = path.join(store.paths.verified, `${key}.json`);
    const memo = JSON.parse(await fs.readFile(memoPath, "utf8")) as Record<string, unknown>;
    expect(memo.host).toBe(hostname());
    expect((await store.lookup(key)).status).toBe("hit");
    const afterCommit = hashed;

    await fs.writeFile(memoPath, JSON.stringify({ ...memo, host: OTHER_HOST }));
    expect(store.lookupVerified(key)).toBeUndefined();
    expect((await store.lookup(key)).status).toBe("hit");
    expect(hashed).toBe(afterCommit + 1);
    expect((JSON.parse(await fs.readFile(memoPath, "utf8")) as Record<string, unknown>).host).toBe(hostname());
    expect(store.lookupVerified(key)?.status).toBe("hit");
  });
});
