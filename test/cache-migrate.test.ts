/**
 * The one-time migration of a cache in the layout before the CAS split (objects/<key>/manifest.json beside the
 * artifact files), as the previous version wrote it: verified, moved into the CAS and the action cache, rerunnable
 * after a crash at any step, and refused while another process computes in the cache.
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { acquireLock } from "../cache/lock.ts";
import { ArtifactStore, type Manifest } from "../cache/store.ts";

const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), "cache-migrate-"));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

/** Writes objects/<key>/ as the previous version committed it: the files, then manifest.json naming them. */
async function legacyObject(files: Record<string, Buffer | string>): Promise<Manifest> {
  const key = sha256(randomBytes(16));
  const dir = path.join(root, "objects", key);
  await fs.mkdir(dir, { recursive: true });
  const artifacts: Manifest["artifacts"] = Object.fromEntries(
    Object.entries(files).map(([file, bytes]) => [
      file.replace(/\..*$/, ""),
      { file, bytes: Buffer.byteLength(bytes), sha256: sha256(bytes), kind: "file" as const },
    ]),
  );
  const manifest: Manifest = {
    formatVersion: 1,
    key,
    nodeId: `node[${key.slice(0, 4)}]`,
    stage: "node",
    version: "1",
    params: {},
    inputs: {},
    artifacts,
    startedAt: "2024-01-01T00:00:00.000Z",
    finishedAt: "2024-01-01T00:00:01.000Z",
    durationMs: 1000,
    tool: { name: "resnet-perturbation-pipeline", version: "0.1.0" },
    runtime: {},
  };
  for (const [file, bytes] of Object.entries(files)) await fs.writeFile(path.join(dir, file), bytes);
  await fs.writeFile(path.join(dir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}

describe("migration from objects/<key>/", () => {
  it("moves every intact object into the CAS and the action cache, equal files once, and quarantines a corrupt one", async () => {
    const shared = randomBytes(20_000);
    const one = await legacyObject({ "model.json": "{}", "weights.bin": shared });
    const two = await legacyObject({ "table.parquet": shared, "note.txt": "two" });
    const corrupt = await legacyObject({ "a.bin": "fine", "b.bin": "also fine" });
    await fs.writeFile(path.join(root, "objects", corrupt.key, "b.bin"), "changed!!"); // same size, other bytes
    await fs.writeFile(path.join(root, "objects", "stray"), "not an object");

    const store = await ArtifactStore.open(root);
    expect(store.migration?.migrated).toBe(2);
    expect(store.migration?.quarantined.map((q) => [q.entry, q.reason]).sort()).toEqual(
      [
        [corrupt.key, "artifact 'b': sha256 differs"],
        ["stray", "not a cache key"],
      ].sort(),
    );
    await expect(fs.access(path.join(root, "objects"))).rejects.toThrow();
    for (const manifest of [one, two]) {
      const found = await store.lookup(manifest.key, { full: true });
      expect(found.status === "hit" && found.manifest).toEqual(manifest);
      if (found.status !== "hit") continue;
      for (const a of Object.values(manifest.artifacts)) {
        expect(sha256(await fs.readFile(path.join(found.dir, a.file)))).toBe(a.sha256);
      }
    }
    expect(await store.lookup(corrupt.key)).toEqual({ status: "miss" });
    const blobs = (await fs.readdir(store.paths.cas, { recursive: true, withFileTypes: true })).filter((e) =>
      e.isFile(),
    );
    expect(blobs.map((b) => b.name).sort()).toEqual([sha256(shared), sha256("{}"), sha256("two")].sort());
    expect((await ArtifactStore.open(root)).migration).toBeUndefined(); // once only
  });

  it("a migration cut short (one file already moved, no entry yet) is completed by the next open", async () => {
    const manifest = await legacyObject({ "x.bin": randomBytes(5_000), "y.bin": "y" });
    const moved = manifest.artifacts.x!;
    const blob = path.join(root, "cas", "sha256", moved.sha256.slice(0, 2), moved.sha256);
    await fs.mkdir(path.dirname(blob), { recursive: true });
    await fs.rename(path.join(root, "objects", manifest.key, "x.bin"), blob);

    const store = await ArtifactStore.open(root);
    expect(store.migration).toEqual({ migrated: 1, quarantined: [] });
    const found = await store.lookup(manifest.key, { full: true });
    expect(found.status === "hit" && found.manifest).toEqual(manifest);
  });

  it("refuses, in one line, while another process computes in the old cache", async () => {
    const manifest = await legacyObject({ "x.bin": "x" });
    await fs.mkdir(path.join(root, "locks"), { recursive: true });
    await fs.mkdir(path.join(root, "tmp"), { recursive: true });
    const busy = sha256("busy");
    const release = await acquireLock(path.join(root, "locks", `${busy}.lock`), path.join(root, "tmp"));
    try {
      await expect(ArtifactStore.open(root)).rejects.toThrow(
        /layout before the CAS split and another pipeline process is computing in it .*let that run finish/,
      );
    } finally {
      await release();
    }
    const store = await ArtifactStore.open(root);
    expect(store.migration?.migrated).toBe(1);
    expect((await store.lookup(manifest.key)).status).toBe("hit");
  });
});
