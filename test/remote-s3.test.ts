/**
 * The remote cache against a real S3 server (`rclone serve s3`, see fixtures/s3-server.ts): the CI replay configuration
 * computed once into machine A's cache with uploads, then fetched into fresh caches; and the failure modes (a wrong
 * or missing remote blob, a server killed mid-upload or down, configuration mistakes, a poisoned entry) on the small
 * fake pipeline. Credentials must never appear in any output.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as fs from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DeleteObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openRemote } from "../cache/remote/remote.ts";
import { RemoteCache } from "../cache/remote/transfer.ts";
import { ArtifactStore } from "../cache/store.ts";
import { main } from "../pipeline/cli.ts";
import type { PipelineDefinition } from "../pipeline/definition.ts";
import { paperPipeline } from "../stages/index.ts";
import { capture } from "./fixtures/capture.ts";
import { fakePipeline, runCounts } from "./fixtures/fake-pipeline.ts";
import { infoFor } from "./fixtures/manifest.ts";
import { ACCESS_KEY_ID, SECRET_ACCESS_KEY, startS3Server, type S3Server } from "./fixtures/s3-server.ts";

const repoRoot = resolve(import.meta.dirname, "..");
const dataDir = resolve(repoRoot, "../shared/datasets");
const haveData = existsSync(join(dataDir, "MNIST/raw/train-images-idx3-ubyte.gz"));
const lock = JSON.parse(readFileSync(join(repoRoot, "pipeline.lock.json"), "utf8")) as {
  nodes: Record<string, { key: string; artifacts: Record<string, string> }>;
};

const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

interface NodeJson {
  id: string;
  status: string;
  reason?: string;
  artifacts: Record<string, { sha256: string }>;
}

/** Every output of this file's CLI calls, checked for credentials at the end. */
const outputs: string[] = [];

const cli = async <C, R>(definition: PipelineDefinition<C, R>, args: string[]) => {
  const out = capture();
  const err = capture();
  const code = await main(definition, args, { out: out.stream, err: err.stream });
  outputs.push(out.text(), err.text());
  return { code, out: out.text(), err: err.text() };
};

/** Files below `dir`, relative to it, sorted. */
const filesBelow = (dir: string): string[] =>
  existsSync(dir)
    ? (
        readdirSync(dir, { recursive: true, withFileTypes: true }) as Array<{
          isFile(): boolean;
          parentPath: string;
          name: string;
        }>
      )
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
        .sort()
    : [];

let server: S3Server;
let work: string;
const savedEnv = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "remote-s3-"));
  server = await startS3Server(join(work, "s3"));
  process.env.AWS_ACCESS_KEY_ID = ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = SECRET_ACCESS_KEY;
});

afterAll(async () => {
  await server?.kill();
  process.env.AWS_ACCESS_KEY_ID = savedEnv.id;
  process.env.AWS_SECRET_ACCESS_KEY = savedEnv.secret;
  if (savedEnv.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
  if (savedEnv.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
  const all = outputs.join("\n");
  expect(all).not.toContain(ACCESS_KEY_ID);
  expect(all).not.toContain(SECRET_ACCESS_KEY);
});

describe.skipIf(!haveData)(`the CI replay configuration through the S3 remote (needs ${dataDir})`, () => {
  const ciRun = (cacheDir: string, ...extra: string[]) =>
    cli(paperPipeline, [
      "run",
      "all",
      "--config",
      join(repoRoot, "configs/ci-replay.json"),
      "--data-dir",
      dataDir,
      "--backend",
      "tensorflow",
      "--offline",
      "--cache-dir",
      cacheDir,
      "--json",
      ...extra,
    ]);
  const remoteDir = () => join(server.dir, server.bucket, "ci");
  const blobFile = (sha: string) => join(remoteDir(), "cas", "sha256", sha.slice(0, 2), sha);
  /** Every artifact the lock pins (all but volatile timings) has the locked sha256. */
  const expectLockBytes = (nodes: NodeJson[]) => {
    for (const n of nodes) {
      const locked = lock.nodes[n.id]!.artifacts;
      const shas = Object.fromEntries(Object.keys(locked).map((name) => [name, n.artifacts[name]?.sha256]));
      expect(shas, n.id).toEqual(locked);
    }
  };

  beforeAll(async () => {
    // Machine A computes everything and uploads it.
    const a = await ciRun(join(work, "machine-a"), "--remote", server.url("ci"));
    expect(a.code, a.err).toBe(0);
    expect(filesBelow(join(remoteDir(), "ac"))).toHaveLength(Object.keys(lock.nodes).length);
  }, 300_000);

  it("a fresh cache with --remote-upload=false takes every node from the remote, nothing computed, bytes as locked", async () => {
    const cacheDir = join(work, "machine-b");
    const before = filesBelow(remoteDir());
    const status = await cli(paperPipeline, [
      "status",
      "--config",
      join(repoRoot, "configs/ci-replay.json"),
      "--cache-dir",
      cacheDir,
      "--remote",
      server.url("ci"),
    ]);
    expect(status.out).toContain(`0 local, ${Object.keys(lock.nodes).length} remote-only, 0 missing`);

    const b = await ciRun(cacheDir, "--remote", server.url("ci"), "--remote-upload=false");
    expect(b.code, b.err).toBe(0);
    const nodes = (JSON.parse(b.out) as { nodes: NodeJson[] }).nodes;
    expect(nodes.map((n) => n.id).sort()).toEqual(Object.keys(lock.nodes).sort());
    for (const n of nodes)
      expect([n.id, n.status, n.reason]).toEqual([n.id, "cached", expect.stringMatching(/^remote hit/)]);
    expect(b.err).not.toMatch(/^run /m); // nothing trained or computed
    expectLockBytes(nodes);
    expect(filesBelow(remoteDir())).toEqual(before); // read only

    const replay = await cli(paperPipeline, [
      "replay",
      "--check",
      "--lock",
      join(repoRoot, "pipeline.lock.json"),
      "--data-dir",
      dataDir,
      "--offline",
      "--cache-dir",
      cacheDir,
      "--remote",
      server.url("ci"),
    ]);
    expect(replay.code, replay.err).toBe(0);
    expect(replay.out).toContain(`${Object.keys(lock.nodes).length} match, 0 mismatch`);
    expect(replay.err).not.toMatch(/^run /m);
  }, 300_000);

  it("a flipped byte in a remote blob and a deleted remote blob are caught, those nodes recomputed and repaired", async () => {
    const fits = lock.nodes["fit[mnist]"]!.artifacts.fits!;
    const stopRule = Object.values(lock.nodes["stop-rule[mnist,eps=0.1]"]!.artifacts)[0]!;
    // Through the server (changing its files underneath would make it abort the download instead).
    const flipped = readFileSync(blobFile(fits));
    flipped.writeUInt8(flipped.readUInt8(flipped.length >> 1) ^ 0xff, flipped.length >> 1);
    writeFileSync(join(work, "flipped"), flipped);
    await (await openRemote(server.url("ci"))).putBlob(fits, join(work, "flipped"), flipped.length);
    const client = new S3Client({ endpoint: server.endpoint, region: "us-east-1", forcePathStyle: true });
    const stopRuleKey = `ci/cas/sha256/${stopRule.slice(0, 2)}/${stopRule}`;
    await client.send(new DeleteObjectCommand({ Bucket: server.bucket, Key: stopRuleKey }));
    client.destroy();

    const c = await ciRun(join(work, "machine-c"), "--remote", server.url("ci"));
    expect(c.code, c.err).toBe(0);
    const nodes = (JSON.parse(c.out) as { nodes: NodeJson[] }).nodes;
    const ran = nodes.filter((n) => n.status === "ran").map((n) => n.id);
    expect(ran.sort(), c.err).toEqual(["fit[mnist]", "stop-rule[mnist,eps=0.1]"]);
    expect(c.err).toMatch(
      /fit\[mnist\]: remote entry not used: its blob of artifact 'fits' on the remote does not match/,
    );
    expect(c.err).toMatch(/stop-rule\[mnist,eps=0\.1\]: remote entry not used: its blob of artifact '\w+' is missing/);
    expectLockBytes(nodes);
    // The recomputed nodes' uploads put the right bytes back, though the flipped blob's name was taken.
    expect(sha256(readFileSync(blobFile(fits)))).toBe(fits);
    expect(sha256(readFileSync(blobFile(stopRule)))).toBe(stopRule);
  }, 300_000);
});

describe("remote cache failures on the fake pipeline", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(work, "fake-"));
    writeFileSync(join(dir, "a.txt"), "1 2 3");
    writeFileSync(join(dir, "b.txt"), "4 5");
    writeFileSync(join(dir, "behaviour.json"), JSON.stringify({ failOn: [], sleepMs: 0 }));
  });
  const fake = (...args: string[]) => cli(fakePipeline(dir), args);

  it("a server that is down: the run succeeds locally with one warning", async () => {
    const down = await startS3Server(join(work, "down"));
    await down.kill();
    const r = await fake("run", "all", "--cache-dir", join(dir, "down-cache"), "--remote", down.url("x"));
    expect(r.code, r.err).toBe(0);
    const warnings = r.err.split("\n").filter((l) => l.startsWith("warning:"));
    expect(warnings).toEqual([expect.stringMatching(/cannot reach the server \(ECONNREFUSED\).*local cache only$/)]);
    expect(r.err).toMatch(/summary: 5 ran/);
  }, 60_000);

  it("configuration mistakes are one line and exit code 2: unknown scheme, missing bucket, refused credentials", async () => {
    const cacheDir = join(dir, "config-cache");
    const unknown = await fake("run", "all", "--cache-dir", cacheDir, "--remote", "ftp://host/cache");
    expect([unknown.code, unknown.err]).toEqual([
      2,
      'pipeline: --remote: unknown URL scheme "ftp" (expected s3:// or file://)\n',
    ]);
    const bucket = await fake(
      "status",
      "--cache-dir",
      cacheDir,
      "--remote",
      `s3://no-such-bucket/x?endpoint=${server.endpoint}`,
    );
    expect(bucket.code).toBe(2);
    expect(bucket.err).toMatch(
      /^pipeline: remote s3:\/\/no-such-bucket\/.*: the bucket no-such-bucket does not exist\n$/,
    );
    process.env.AWS_SECRET_ACCESS_KEY = "notTheRightSecret123";
    try {
      const creds = await fake("pull", "all", "--cache-dir", cacheDir, "--remote", server.url("x"));
      expect(creds.code).toBe(2);
      expect(creds.err).toMatch(/^pipeline: remote .*: the server refused the credentials \(.*\); check .*\n$/);
      expect(creds.err).not.toContain("notTheRightSecret123");
    } finally {
      process.env.AWS_SECRET_ACCESS_KEY = SECRET_ACCESS_KEY;
    }
    const host = await fake("status", "--cache-dir", cacheDir, "--remote", "file://host/cache");
    expect([host.code, host.err]).toEqual([
      2,
      "pipeline: --remote: file://host/cache names a host; write file:///absolute/path\n",
    ]);
    const nowhere = join(dir, "nowhere");
    const folder = await fake("status", "--cache-dir", cacheDir, "--remote", `file://${nowhere}`);
    expect([folder.code, folder.err]).toEqual([
      2,
      `pipeline: remote file://${nowhere}: the folder ${nowhere} does not exist\n`,
    ]);
    const flag = await fake(
      "run",
      "all",
      "--cache-dir",
      cacheDir,
      "--remote",
      server.url("x"),
      "--remote-upload=maybe",
    );
    expect([flag.code, flag.err]).toEqual([2, 'pipeline: --remote-upload expects true or false, got "maybe"\n']);
  });

  it("push, status (local / remote-only / missing) and pull; a remote entry that fails its schema is rejected", async () => {
    const url = server.url("fake");
    const first = join(dir, "first");
    expect((await fake("run", "all", "--cache-dir", first, "--remote-upload=false", "--remote", url)).code).toBe(0);
    expect(filesBelow(join(server.dir, server.bucket, "fake"))).toEqual([]);
    const pushed = await fake("push", "power", "--cache-dir", first, "--remote", url);
    expect(pushed.code, pushed.err).toBe(0);
    expect(pushed.err).toMatch(/summary: 4 of 4 node\(s\) pushed/);

    const second = join(dir, "second");
    const status = await fake("status", "--cache-dir", second, "--remote", url);
    expect(status.out).toMatch(/^all: 0 local, 4 remote-only, 1 missing, 0 pending/);
    expect(status.out).toMatch(/remote\s+power\[a\]/);
    const pulled = await fake("pull", "all", "--cache-dir", second, "--remote", url);
    expect(pulled.code).toBe(1); // total[all] was never pushed
    expect(pulled.err).toMatch(/summary: 4 fetched .*, 0 already local, 0 failed, 1 missing/);
    const after = await fake("status", "--cache-dir", second, "--remote", url);
    expect(after.out).toMatch(/^all: 4 local, 0 remote-only, 1 missing, 0 pending/);

    // The same through a shared folder.
    const folder = `file://${join(dir, "shared")}`;
    await fs.mkdir(join(dir, "shared"));
    expect((await fake("push", "all", "--cache-dir", first, "--remote", folder)).code).toBe(0);
    const fromFolder = await fake("pull", "all", "--cache-dir", join(dir, "from-folder"), "--remote", folder);
    expect(fromFolder.err).toMatch(/summary: 5 fetched .*, 0 already local, 0 failed, 0 missing/);

    // A poisoned entry for source[a]'s key: valid JSON, but not a manifest. It is rejected in one line, never used.
    const store = await ArtifactStore.open(second);
    const key = (await store.list()).manifests.find((m) => m.nodeId === "source[a]")!.key;
    writeFileSync(join(server.dir, server.bucket, "fake", "ac", `${key}.json`), '{"formatVersion": 1, "key": "x"}');
    const third = join(dir, "third");
    const before = runCounts(dir)["source[a]"] ?? 0;
    const run = await fake("run", "all", "--cache-dir", third, "--remote", url, "--remote-upload=false");
    expect(run.code, run.err).toBe(0);
    expect(run.err.split("\n").filter((l) => l.includes("rejected"))).toEqual([
      `warning: remote entry ${key.slice(0, 12)} rejected: manifest.json is invalid: key: expected 64 hex digits`,
    ]);
    expect(runCounts(dir)["source[a]"]).toBe(before + 1);
  });

  it("a server killed mid-upload leaves no remote entry naming a missing blob", async () => {
    const killed = await startS3Server(join(work, "killed"));
    const store = await ArtifactStore.open(join(dir, "upload-cache"));
    const key = sha256(randomBytes(8));
    const staging = await store.stage("big[x]");
    await fs.writeFile(join(staging.dir, "big.bin"), randomBytes(48 * 1024 * 1024));
    await fs.writeFile(join(staging.dir, "small.txt"), "small");
    const manifest = await store.commit(
      staging,
      infoFor(key, "big[x]", "big"),
      { big: { file: "big.bin", kind: "file" }, small: { file: "small.txt", kind: "file" } },
      { refDigest: "d" },
    );
    const warnings: string[] = [];
    const remote = await RemoteCache.open(await openRemote(killed.url("cut")), store, {
      upload: true,
      warn: (line) => warnings.push(line),
      tries: 2,
      backoffMs: 10,
    });
    let killing: Promise<void> | undefined;
    const result = await remote.upload(manifest, { onProgress: () => void (killing ??= killed.kill()) });
    await killing;
    expect(killing).toBeDefined();
    expect(result).toBeUndefined();
    expect(warnings, warnings.join("\n")).toHaveLength(1);
    const remoteRoot = join(killed.dir, killed.bucket, "cut");
    expect(filesBelow(join(remoteRoot, "ac"))).toEqual([]);
  }, 60_000);
});
