import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import { tmpdir, hostname } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { it as effectIt } from "@effect/vitest";
import { Effect, Fiber } from "effect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { storeService } from "../cache/service.ts";
import { ArtifactStore, sha256File, writeFileAtomic, type Manifest, type Staging } from "../cache/store.ts";
import { infoFor } from "./fixtures/manifest.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const crashWriter = path.join(repoRoot, "test/fixtures/crash-writer.ts");

const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");
const randomKey = () => sha256(randomBytes(16));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A seeded pseudo-random generator (mulberry32): the kill moments of a run can be replayed from its seed. */
const seededRandom = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), "cache-test-"));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

/** Stages `files` (name -> bytes) and commits them as `key`, each declared as a plain file artifact named after it. */
async function commitFiles(
  store: ArtifactStore,
  key: string,
  files: Record<string, Uint8Array | string>,
  stage = "stage-a",
) {
  const staging = await store.stage(`${stage}[x]`);
  for (const [file, bytes] of Object.entries(files)) await fs.writeFile(path.join(staging.dir, file), bytes);
  const artifacts = Object.fromEntries(Object.keys(files).map((file) => [file, { file, kind: "file" as const }]));
  return store.commit(staging, infoFor(key, `${stage}[x]`, stage), artifacts, {
    refDigest: `digest-${key.slice(0, 8)}`,
  });
}

/** The blob file of the artifact stored under `file` in `manifest` (made writable, so that a test can damage it). */
async function blobOf(store: ArtifactStore, manifest: Manifest, file: string): Promise<string> {
  const blob = store.blobPath(Object.values(manifest.artifacts).find((a) => a.file === file)!.sha256);
  await fs.chmod(blob, 0o644);
  return blob;
}

/** A hasher that counts the files it hashes. */
function countingHasher() {
  const counter = { files: 0, hashFile: (file: string) => (counter.files++, sha256File(file)) };
  return counter;
}

async function bumpMtime(file: string) {
  const later = new Date(Date.now() + 5_000);
  await fs.utimes(file, later, later);
}

interface Child {
  readonly process: ChildProcess;
  readonly lines: string[];
  /** Resolves when a stdout line matches (or rejects if the child exits first). */
  waitFor(pattern: RegExp): Promise<string>;
  readonly exited: Promise<void>;
}

function spawnWriter(args: string[]): Child {
  const child = spawn(process.execPath, ["--import", "tsx", crashWriter, ...args], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let partial = "";
  let stderr = "";
  const listeners = new Set<() => void>();
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop()!;
    lines.push(...parts);
    for (const listener of listeners) listener();
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const waitFor = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const line = lines.find((l) => pattern.test(l));
        if (line !== undefined) {
          listeners.delete(check);
          resolve(line);
        }
      };
      listeners.add(check);
      check();
      void exited.then(() => {
        check();
        reject(new Error(`crash-writer exited before printing ${pattern}: ${stderr}`));
      });
    });
  return { process: child, lines, waitFor, exited };
}

describe("helpers", () => {
  it("sha256File streams a multi-chunk file to the same digest as hashing its bytes", async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const file = path.join(root, "big.bin");
    await fs.writeFile(file, bytes);
    expect(await sha256File(file)).toBe(sha256(bytes));
  });

  it("writeFileAtomic replaces content and leaves no temp file behind", async () => {
    const file = path.join(root, "x.json");
    await writeFileAtomic(file, "one");
    await writeFileAtomic(file, new TextEncoder().encode("two"));
    expect(await fs.readFile(file, "utf8")).toBe("two");
    expect(await fs.readdir(root)).toEqual(["x.json"]);
  });
});

describe("commit and lookup", () => {
  it("commits an entry and blobs that a lookup then hits, with sizes, hashes and rows recorded, a ref written and scratch removed", async () => {
    const store = await ArtifactStore.open(root);
    const key = randomKey();
    await fs.writeFile(path.join(await store.scratchDir(key), "checkpoint"), "epoch 3");
    const table = randomBytes(12_345);
    const note = "hello\n";
    const staging = await store.stage("stage-a[x]");
    await fs.writeFile(path.join(staging.dir, "table.parquet"), table);
    await fs.writeFile(path.join(staging.dir, "note.txt"), note);
    const schema = { fields: [{ name: "loss", type: "DOUBLE" }] };
    const manifest = await store.commit(
      staging,
      infoFor(key),
      { rows: { file: "table.parquet", kind: "table", rows: 42, schema }, note: { file: "note.txt", kind: "file" } },
      { refDigest: "params-1" },
    );

    expect(manifest.artifacts).toEqual({
      rows: { file: "table.parquet", bytes: table.length, sha256: sha256(table), kind: "table", rows: 42, schema },
      note: { file: "note.txt", bytes: Buffer.byteLength(note), sha256: sha256(note), kind: "file" },
    });
    expect(manifest).toMatchObject({
      formatVersion: 1,
      key,
      nodeId: "node[a]",
      stage: "stage-a",
      version: "3",
      params: { width: 16 },
    });

    const found = await store.lookup(key);
    expect(found.status).toBe("hit");
    if (found.status !== "hit") return;
    expect(found.dir).toBe(path.join(root, "views", key));
    expect(found.manifest).toEqual(manifest);
    expect((await fs.readdir(found.dir)).sort()).toEqual(["note.txt", "table.parquet"]);
    expect(Buffer.compare(await fs.readFile(path.join(found.dir, "table.parquet")), table)).toBe(0);
    expect(JSON.parse(await fs.readFile(path.join(root, "ac", `${key}.json`), "utf8"))).toEqual(manifest);
    // The bytes live once in the CAS, read-only, named by their hash.
    const blob = path.join(root, "cas", "sha256", sha256(table).slice(0, 2), sha256(table));
    expect(Buffer.compare(await fs.readFile(blob), table)).toBe(0);
    expect((await fs.stat(blob)).mode & 0o222).toBe(0);

    expect(await store.readRef("stage-a", "params-1")).toMatchObject({ nodeId: "node[a]", key });
    expect(await store.readRef("stage-a", "params-2")).toBeUndefined();
    await expect(fs.access(path.join(root, "scratch", key))).rejects.toThrow();
    expect(await fs.readdir(store.paths.tmp)).toEqual([]);
    expect(await store.manifest(key)).toEqual(manifest);
    expect(await store.list()).toEqual({ manifests: [manifest], unreadable: [] });
    expect(await store.lookup(randomKey())).toEqual({ status: "miss" });
  });

  it("refuses to commit undeclared, missing or reserved files", async () => {
    const store = await ArtifactStore.open(root);
    const staging = await store.stage("n");
    await fs.writeFile(path.join(staging.dir, "a.bin"), "a");
    await fs.writeFile(path.join(staging.dir, "stray.tmp"), "b");
    const key = randomKey();
    const a = { file: "a.bin", kind: "file" } as const;
    await expect(store.commit(staging, infoFor(key), { a }, { refDigest: "d" })).rejects.toThrow(
      /undeclared files.*stray\.tmp/,
    );
    await expect(
      store.commit(staging, infoFor(key), { a, b: { file: "b.bin", kind: "file" } }, { refDigest: "d" }),
    ).rejects.toThrow(/b\.bin was not written/);
    await expect(
      store.commit(staging, infoFor(key), { m: { file: "manifest.json", kind: "file" } }, { refDigest: "d" }),
    ).rejects.toThrow(/reserved/);
    await expect(
      store.commit(staging, infoFor(key), { x: { file: "../a.bin", kind: "file" } }, { refDigest: "d" }),
    ).rejects.toThrow(/single segment/);
    expect(await store.lookup(key)).toEqual({ status: "miss" });
    await store.discard(staging);
    expect(await fs.readdir(store.paths.tmp)).toEqual([]);
  });

  it("rejects keys that are not 64 hex digits", async () => {
    const store = await ArtifactStore.open(root);
    await expect(store.lookup("../../etc")).rejects.toThrow(/invalid cache key/);
    await expect(store.lock("ABC")).rejects.toThrow(/invalid cache key/);
  });

  it("two concurrent commits of the same key leave one valid entry and agree on its manifest", async () => {
    const store = await ArtifactStore.open(root);
    const other = await ArtifactStore.open(root);
    const key = randomKey();
    const [first, second] = await Promise.all([
      commitFiles(store, key, { "out.bin": randomBytes(500_000) }),
      commitFiles(other, key, { "out.bin": randomBytes(500_000) }),
    ]);
    expect(first).toEqual(second);
    expect(await fs.readdir(store.paths.ac)).toEqual([`${key}.json`]);
    const found = await store.lookup(key, { full: true });
    expect(found.status === "hit" && found.manifest).toEqual(first);
    expect(await fs.readdir(store.paths.tmp)).toEqual([]);
  });

  it("remove deletes an entry so that a recomputed one can be committed in its place", async () => {
    const store = await ArtifactStore.open(root);
    const key = randomKey();
    await commitFiles(store, key, { "out.bin": "old" });
    expect(await store.remove(key)).toBe(true);
    expect(await store.remove(key)).toBe(false);
    expect(await store.lookup(key)).toEqual({ status: "miss" });
    const manifest = await commitFiles(store, key, { "out.bin": "new" });
    expect(manifest.artifacts["out.bin"]?.sha256).toBe(sha256("new"));
  });
});

describe("corruption", () => {
  it("a flipped byte (same size, newer mtime) is corrupt, naming the file; entry and blob are quarantined and the next lookup misses", async () => {
    const store = await ArtifactStore.open(root);
    const key = randomKey();
    const bytes = randomBytes(10_000);
    const manifest = await commitFiles(store, key, { "weights.bin": bytes, "other.bin": "fine" });
    const file = await blobOf(store, manifest, "weights.bin");
    const flipped = Buffer.from(bytes);
    flipped[5_000] = flipped[5_000]! ^ 0xff;
    await fs.writeFile(file, flipped);
    await bumpMtime(file);

    const found = await store.lookup(key);
    expect(found.status).toBe("corrupt");
    if (found.status !== "corrupt") return;
    expect(found.reason).toContain("weights.bin");
    expect(found.reason).toContain(`expected ${sha256(bytes)}, found ${sha256(flipped)}`);
    const quarantined = await fs.readdir(store.paths.quarantine);
    expect(quarantined).toHaveLength(2);
    const entry = quarantined.find((name) => name.startsWith(`${key}-`));
    expect(quarantined.find((name) => name.startsWith(`blob-${sha256(bytes)}-`))).toBeDefined();
    expect(found.quarantinedTo).toBe(path.join(store.paths.quarantine, entry!));
    expect(await store.lookup(key)).toEqual({ status: "miss" });
    await expect(fs.access(store.blobPath(sha256(bytes)))).rejects.toThrow();
  });

  it("a truncated file is corrupt, reporting expected and actual size", async () => {
    const store = await ArtifactStore.open(root);
    const key = randomKey();
    const manifest = await commitFiles(store, key, { "table.parquet": randomBytes(2_000) });
    await fs.truncate(await blobOf(store, manifest, "table.parquet"), 1_500);
    const found = await store.lookup(key);
    expect(found).toMatchObject({
      status: "corrupt",
      reason: expect.stringMatching(/table\.parquet.*expected 2000 bytes, found 1500/),
    });
    expect(await store.lookup(key)).toEqual({ status: "miss" });
  });

  it("an entry naming a missing blob is corrupt", async () => {
    const store = await ArtifactStore.open(root);
    const key = randomKey();
    const manifest = await commitFiles(store, key, { "a.bin": "a", "b.bin": "b" });
    await fs.rm(await blobOf(store, manifest, "b.bin"));
    expect(await store.lookup(key)).toMatchObject({
      status: "corrupt",
      reason: expect.stringMatching(/b\.bin.*missing/),
    });
  });

  it("blobs without their entry (a commit cut short before its last step) are a miss, and shared by a later commit", async () => {
    const store = await ArtifactStore.open(root);
    const key = randomKey();
    await commitFiles(store, key, { "a.bin": "a" });
    await fs.rm(path.join(store.paths.ac, `${key}.json`));
    expect(await store.lookup(key)).toEqual({ status: "miss" });
    const again = await commitFiles(store, key, { "a.bin": "a" });
    expect((await store.lookup(key, { full: true })).status).toBe("hit");
    expect(again.artifacts["a.bin"]?.sha256).toBe(sha256("a"));
  });

  it("equal outputs of different nodes are stored once", async () => {
    const store = await ArtifactStore.open(root);
    const shared = randomBytes(5_000);
    await commitFiles(store, randomKey(), { "x.bin": shared, "own.txt": "one" });
    await commitFiles(store, randomKey(), { "y.bin": shared, "own.txt": "two" }, "stage-b");
    const blobs = (await fs.readdir(store.paths.cas, { recursive: true, withFileTypes: true })).filter((e) =>
      e.isFile(),
    );
    expect(blobs.map((b) => b.name).sort()).toEqual([sha256(shared), sha256("one"), sha256("two")].sort());
  });

  it("an unparseable or mismatched manifest is corrupt", async () => {
    const store = await ArtifactStore.open(root);
    const [garbled, misnamed] = [randomKey(), randomKey()];
    await commitFiles(store, garbled, { "a.bin": "a" });
    await fs.writeFile(path.join(store.paths.ac, `${garbled}.json`), '{"formatVersion": 1, "key"');
    expect(await store.lookup(garbled)).toMatchObject({ status: "corrupt", reason: expect.stringMatching(/not JSON/) });
    await commitFiles(store, misnamed, { "a.bin": "a" });
    const manifestPath = path.join(store.paths.ac, `${misnamed}.json`);
    const text = await fs.readFile(manifestPath, "utf8");
    await fs.writeFile(manifestPath, text.replace(`"key": "${misnamed}"`, `"key": "${garbled}"`));
    expect(await store.lookup(misnamed)).toMatchObject({
      status: "corrupt",
      reason: expect.stringMatching(/names key/),
    });
  });

  it("the stat memo skips re-hashing unchanged files; a full lookup or a changed stat re-hashes", async () => {
    const hasher = countingHasher();
    const store = await ArtifactStore.open(root, { hashFile: hasher.hashFile });
    const key = randomKey();
    const manifest = await commitFiles(store, key, {
      "a.bin": randomBytes(1000),
      "b.bin": randomBytes(1000),
      "c.bin": randomBytes(1000),
    });
    expect(hasher.files).toBe(3); // commit hashes each file once

    expect((await store.lookup(key)).status).toBe("hit");
    expect((await store.lookup(key)).status).toBe("hit");
    expect(hasher.files).toBe(3);

    expect((await store.lookup(key, { full: true })).status).toBe("hit");
    expect(hasher.files).toBe(6);

    await bumpMtime(await blobOf(store, manifest, "b.bin")); // same bytes, new stat: only that blob is re-checked
    expect((await store.lookup(key)).status).toBe("hit");
    expect(hasher.files).toBe(7);
    expect((await store.lookup(key)).status).toBe("hit");
    expect(hasher.files).toBe(7);

    await fs.rm(path.join(store.paths.verified, `${key}.json`));
    expect((await store.lookup(key)).status).toBe("hit");
    expect(hasher.files).toBe(10);
  });

  it("a full lookup catches a flipped byte that the stat memo cannot see", async () => {
    const store = await ArtifactStore.open(root);
    const key = randomKey();
    const bytes = randomBytes(4_000);
    const manifest = await commitFiles(store, key, { "a.bin": bytes });
    const file = await blobOf(store, manifest, "a.bin");
    // Simulate silent on-disk corruption while keeping every stat field the memo compares, by rewriting the memo.
    const flipped = Buffer.from(bytes);
    flipped[0] = flipped[0]! ^ 1;
    await fs.writeFile(file, flipped);
    const memoPath = path.join(store.paths.verified, `${key}.json`);
    const memo = JSON.parse(await fs.readFile(memoPath, "utf8"));
    const stats = await fs.stat(file, { bigint: true });
    memo.files["a.bin"] = {
      ...memo.files["a.bin"],
      mtimeNs: String(stats.mtimeNs),
      ctimeNs: String(stats.ctimeNs),
      ino: String(stats.ino),
    };
    await fs.writeFile(memoPath, JSON.stringify(memo));

    expect((await store.lookup(key)).status).toBe("hit");
    expect(await store.lookup(key, { full: true })).toMatchObject({
      status: "corrupt",
      reason: expect.stringContaining("a.bin"),
    });
  });
});

describe("crash safety", () => {
  it("kill -9 at random moments leaves only complete entries; open() then removes the dead writers' tmp entries", async () => {
    const committed = new Set<string>();
    const iterations = 7;
    const random = seededRandom(9);
    for (let i = 0; i < iterations; i++) {
      const child = spawnWriter(["commit-loop", root]);
      await child.waitFor(/^ready$/);
      // The last run is killed only after at least one commit, so the test always has objects to check.
      if (i === iterations - 1) await child.waitFor(/^committed /);
      await sleep(random() * 400);
      child.process.kill("SIGKILL");
      await child.exited;
      for (const line of child.lines) if (line.startsWith("committed ")) committed.add(line.slice("committed ".length));
    }
    expect(committed.size).toBeGreaterThan(0);

    const hasher = countingHasher();
    const ownStaging: Staging = await (await ArtifactStore.open(root)).stage("live"); // owned by this (live) process
    const store = await ArtifactStore.open(root, { staleTmpAfterMs: 0, hashFile: hasher.hashFile });
    expect(await fs.readdir(store.paths.tmp)).toEqual([path.basename(ownStaging.dir)]);

    const keys = (await fs.readdir(store.paths.ac)).map((entry) => entry.replace(/\.json$/, ""));
    for (const key of committed) expect(keys).toContain(key);
    for (const key of keys) {
      const found = await store.lookup(key, { full: true });
      expect(found.status, `ac/${key}.json`).toBe("hit");
      if (found.status !== "hit") continue;
      const files = Object.values(found.manifest.artifacts).map((a) => a.file);
      expect((await fs.readdir(found.dir)).sort()).toEqual(files.sort());
    }
    expect(hasher.files).toBe(keys.length * 3);
    expect(await fs.readdir(store.paths.quarantine)).toEqual([]);
    for (const digest of await fs.readdir(path.join(store.paths.refs, "crash"))) {
      const ref = await store.readRef("crash", digest.replace(/\.json$/, ""));
      expect(keys).toContain(ref?.key);
    }
    // Locks left by the killed writers are stale and get broken.
    for (const lockFile of await fs.readdir(store.paths.locks)) {
      const release = await store.tryLock(lockFile.replace(/\.lock$/, ""));
      expect(release, lockFile).toBeDefined();
      await release?.();
    }
    expect(await fs.readdir(store.paths.locks)).toEqual([]);
  });
});

describe("locks", () => {
  it("two lock() calls on one key in one process run one after the other", async () => {
    const store = await ArtifactStore.open(root);
    const key = randomKey();
    const events: string[] = [];
    const holder = async (name: string) => {
      const release = await store.lock(key);
      events.push(`${name} in`);
      await sleep(50);
      events.push(`${name} out`);
      await release();
    };
    await Promise.all([holder("a"), holder("b"), holder("c")]);
    expect(events).toEqual(["a in", "a out", "b in", "b out", "c in", "c out"]);
    expect(await fs.readdir(store.paths.locks)).toEqual([]);
  });

  it("a lock whose holder pid is dead is broken without waiting", async () => {
    const store = await ArtifactStore.open(root);
    const key = randomKey();
    const dead = spawn(process.execPath, ["-e", ""]);
    await new Promise((resolve) => dead.on("exit", resolve));
    const lockFile = path.join(store.paths.locks, `${key}.lock`);
    await fs.writeFile(
      lockFile,
      JSON.stringify({ pid: dead.pid, host: hostname(), startedAt: new Date().toISOString() }),
    );
    let waited = false;
    const release = await store.lock(key, { onWait: () => (waited = true) });
    expect(waited).toBe(false);
    expect(JSON.parse(await fs.readFile(lockFile, "utf8")).pid).toBe(process.pid);
    await release();
    await expect(fs.access(lockFile)).rejects.toThrow();
    expect(await fs.readdir(store.paths.tmp)).toEqual([]);
  });

  it("a waiter whose signal aborts leaves the in-process queue without disturbing the order of the others", async () => {
    const store = await ArtifactStore.open(root);
    const key = randomKey();
    const releaseFirst = await store.lock(key);
    const controller = new AbortController();
    const aborted = store.lock(key, { signal: controller.signal });
    const third = store.lock(key);
    expect(await store.tryLock(key)).toBeUndefined();
    controller.abort(new Error("gave up"));
    await expect(aborted).rejects.toThrow("gave up");
    let thirdIn = false;
    void third.then(() => (thirdIn = true));
    await sleep(50);
    expect(thirdIn).toBe(false);
    await releaseFirst();
    const releaseThird = await third;
    await releaseThird();
    const again = await store.tryLock(key);
    expect(again).toBeDefined();
    await again?.();
  });

  it("processes racing for a stale lock break it once and then hold it one at a time", async () => {
    const store = await ArtifactStore.open(root);
    const key = randomKey();
    const dead = spawn(process.execPath, ["-e", ""]);
    await new Promise((resolve) => dead.on("exit", resolve));
    await fs.writeFile(
      path.join(store.paths.locks, `${key}.lock`),
      JSON.stringify({ pid: dead.pid, host: hostname(), startedAt: new Date().toISOString() }),
    );
    const children = [1, 2, 3].map(() => spawnWriter(["hold-lock", root, key, "150"]));
    await Promise.all(children.map((c) => c.exited));
    const intervals = children
      .map((c) => {
        const at = (word: string) => Number(c.lines.find((l) => l.startsWith(word + " "))?.split(" ")[1]);
        return { locked: at("locked"), releasing: at("releasing") };
      })
      .sort((a, b) => a.locked - b.locked);
    for (const { locked, releasing } of intervals) expect(releasing).toBeGreaterThanOrEqual(locked);
    for (let i = 1; i < intervals.length; i++)
      expect(intervals[i]!.locked).toBeGreaterThanOrEqual(intervals[i - 1]!.releasing);
    expect(await fs.readdir(store.paths.locks)).toEqual([]);
  });

  it("a second process waits for the holder (reporting its pid), and an aborted wait gives up", async () => {
    const store = await ArtifactStore.open(root, { lockPollMs: 50 });
    const key = randomKey();
    const child = spawnWriter(["hold-lock", root, key, "700"]);
    await child.waitFor(/^locked /);

    expect(await store.tryLock(key)).toBeUndefined();
    const aborted = store.lock(key, { signal: AbortSignal.timeout(100) });
    await expect(aborted).rejects.toThrow(/timed out|abort/i);

    const waitedFor: number[] = [];
    const release = await store.lock(key, { onWait: (pid) => waitedFor.push(pid) });
    const acquiredAt = Date.now();
    expect(waitedFor).toEqual([child.process.pid]);
    await release();
    await child.exited;
    // Ours came after the holder let go (an order of events on one clock, not a duration).
    const releasingAt = Number(child.lines.find((l) => l.startsWith("releasing "))?.split(" ")[1]);
    expect(acquiredAt).toBeGreaterThanOrEqual(releasingAt);
  });
});

describe("the store as an Effect service", () => {
  effectIt.live("an interrupted wait for a lock gives up and never holds the lock", () =>
    Effect.gen(function* () {
      const store = yield* Effect.promise(() => ArtifactStore.open(root, { lockPollMs: 10 }));
      const service = storeService(store);
      const key = randomKey();
      const releaseHolder = yield* Effect.promise(() => store.lock(key));
      const waiting = yield* Effect.fork(Effect.scoped(service.lock(key)));
      yield* Effect.sleep("50 millis");
      yield* Fiber.interrupt(waiting);
      yield* Effect.promise(releaseHolder);
      const again = yield* Effect.promise(() => store.tryLock(key));
      expect(again).toBeDefined();
      yield* Effect.promise(() => again!());
      expect(yield* Effect.promise(() => fs.readdir(store.paths.locks))).toEqual([]);
    }),
  );

  effectIt.live("a cache operation that fails is a typed StoreError, not a defect", () =>
    Effect.gen(function* () {
      const store = yield* Effect.promise(() => ArtifactStore.open(root));
      yield* Effect.promise(() => fs.rm(store.paths.ac, { recursive: true }));
      const error = yield* Effect.flip(storeService(store).list);
      expect(error._tag).toBe("StoreError");
      expect(error.message).toMatch(/ENOENT/);
    }),
  );
});

describe("gc", () => {
  it("removes entries, their blobs, refs and scratch not kept, keeps the rest, skips locked keys; a dry run removes nothing", async () => {
    const store = await ArtifactStore.open(root, { blobGraceMs: 0 });
    const [kept, dropped, locked] = [randomKey(), randomKey(), randomKey()];
    await commitFiles(store, kept, { "a.bin": randomBytes(1_000) }, "one");
    await commitFiles(store, dropped, { "a.bin": randomBytes(2_000), "b.bin": randomBytes(3_000) }, "two");
    await commitFiles(store, locked, { "a.bin": randomBytes(500) }, "three");
    await fs.writeFile(path.join(await store.scratchDir(randomKey()), "orphan.ckpt"), randomBytes(700));
    const droppedObjectBytes = (await fs.stat(path.join(store.paths.ac, `${dropped}.json`))).size + 5_000;
    const droppedMemoBytes = (await fs.stat(path.join(store.paths.verified, `${dropped}.json`))).size;
    const droppedRefBytes = (await fs.stat(path.join(store.paths.refs, "two", `digest-${dropped.slice(0, 8)}.json`)))
      .size;
    const expectedFreed = droppedObjectBytes + droppedMemoBytes + droppedRefBytes + 700;
    const keep = new Set([kept]);
    const release = await store.lock(locked);

    const dry = await store.gc(keep, { dryRun: true });
    expect(dry.removed).toEqual([dropped]);
    expect(dry.skipped).toEqual([locked]);
    expect(dry.freedBytes).toBe(expectedFreed);
    for (const key of [kept, dropped, locked]) expect((await store.lookup(key)).status).toBe("hit");
    expect(await fs.readdir(store.paths.scratch)).toHaveLength(1);

    const real = await store.gc(keep);
    expect(real.removed).toEqual([dropped]);
    expect(real.skipped).toEqual([locked]);
    expect(real.removedPaths.sort()).toEqual(dry.removedPaths.sort());
    expect(real.freedBytes).toBe(expectedFreed);
    expect((await store.lookup(kept)).status).toBe("hit");
    expect((await store.lookup(locked)).status).toBe("hit");
    expect(await store.lookup(dropped)).toEqual({ status: "miss" });
    expect(await store.readRef("one", `digest-${kept.slice(0, 8)}`)).toMatchObject({ key: kept });
    expect(await store.readRef("two", `digest-${dropped.slice(0, 8)}`)).toBeUndefined();
    expect(await fs.readdir(store.paths.scratch)).toEqual([]);
    expect(await fs.readdir(store.paths.tmp)).toEqual([]);
    await release();

    expect((await store.gc(keep)).removed).toEqual([locked]);
    expect(await fs.readdir(store.paths.ac)).toEqual([`${kept}.json`]);
    expect(await fs.readdir(store.paths.views)).toEqual([kept]);
    expect((await store.lookup(kept, { full: true })).status).toBe("hit");
  });

  it("keeps a blob another kept entry shares, and young blobs no entry names yet (a commit in flight)", async () => {
    const store = await ArtifactStore.open(root); // default grace: an hour
    const shared = randomBytes(3_000);
    const [kept, dropped] = [randomKey(), randomKey()];
    await commitFiles(store, kept, { "a.bin": shared });
    await commitFiles(store, dropped, { "b.bin": shared, "c.bin": "only mine" });
    const result = await store.gc(new Set([kept]));
    expect(result.removed).toEqual([dropped]);
    expect(result.removedPaths.filter((p) => p.startsWith("cas"))).toEqual([]); // "only mine" is still young
    expect((await store.lookup(kept, { full: true })).status).toBe("hit");
    const aged = await ArtifactStore.open(root, { blobGraceMs: 0 });
    const onlyMine = sha256("only mine");
    expect((await aged.gc(new Set([kept]))).removedPaths).toEqual([
      path.join("cas", "sha256", onlyMine.slice(0, 2), onlyMine),
    ]);
    expect((await aged.lookup(kept, { full: true })).status).toBe("hit");
  });
});
