/**
 * Publishing a node's outputs: a private staging directory under tmp/, filled by the producer, then committed: every
 * file fsync'd and hashed, linked into cas/ as a blob, and the action-cache entry ac/<key>.json written last, so that
 * an entry never names a blob that is not there (kill -9 at any instant leaves, at worst, blobs no entry names yet).
 */
import type { BigIntStats } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { ensureView, publishBlob } from "./blobs.ts";
import { fsyncDir, errnoCode, ifExists, tempName } from "./fsutil.ts";
import { blobPath, entryPath, type StoreLayout } from "./layout.ts";
import {
  artifactFileProblem,
  assertKey,
  parseManifest,
  type ArtifactEntry,
  type Manifest,
  type ManifestInfo,
} from "./manifest.ts";
import { writeRef } from "./refs.ts";
import { stampOf, writeMemo, type StatStamp } from "./verify.ts";

/** A private directory under tmp/ where one node writes its outputs before commit() publishes them. */
export interface Staging {
  readonly dir: string;
  readonly nodeId: string;
}

/** What the producer declares about one output file written into the staging dir. */
export interface ArtifactSpec {
  /** File name inside the staging dir (a single path segment). */
  readonly file: string;
  readonly kind: "table" | "file";
  readonly rows?: number;
  readonly schema?: unknown;
}

/** Finds a valid entry (quarantining a corrupt one): commit's way to see who won a race for the same key. */
export type FindValid = (key: string) => Promise<Manifest | undefined>;

export const stage = async (layout: StoreLayout, nodeId: string): Promise<Staging> => {
  const dir = path.join(layout.paths.tmp, tempName(nodeId));
  await fs.mkdir(dir);
  return { dir, nodeId };
};

const assertStaging = (layout: StoreLayout, staging: Staging): void => {
  if (path.dirname(staging.dir) !== layout.paths.tmp) {
    throw new Error(`${staging.dir} is not a staging dir of the store at ${layout.paths.root}`);
  }
};

export const discard = async (layout: StoreLayout, staging: Staging): Promise<void> => {
  assertStaging(layout, staging);
  await fs.rm(staging.dir, { recursive: true, force: true });
};

/** Throws unless the staging dir holds exactly the declared artifacts, as regular files with valid, distinct names. */
const checkStagingContents = async (
  staging: Staging,
  artifacts: Readonly<Record<string, ArtifactSpec>>,
): Promise<void> => {
  const declared = new Set<string>();
  for (const [name, spec] of Object.entries(artifacts)) {
    const problem = artifactFileProblem(spec.file);
    if (problem !== undefined) throw new Error(`artifact '${name}' of ${staging.nodeId}: ${problem}`);
    if (declared.has(spec.file))
      throw new Error(`artifact '${name}' of ${staging.nodeId}: file ${spec.file} is declared twice`);
    declared.add(spec.file);
    const stats = await ifExists(() => fs.lstat(path.join(staging.dir, spec.file)));
    if (stats === undefined || !stats.isFile()) {
      throw new Error(
        `artifact '${name}' of ${staging.nodeId}: ${spec.file} was not written as a regular file in ${staging.dir}`,
      );
    }
  }
  const undeclared = (await fs.readdir(staging.dir)).filter((entry) => !declared.has(entry));
  if (undeclared.length > 0)
    throw new Error(`${staging.nodeId} left undeclared files in its staging dir: ${undeclared.join(", ")}`);
};

/** fsyncs, stats and hashes one staged file: its entry in the manifest. */
const entryOf = async (layout: StoreLayout, file: string, spec: ArtifactSpec): Promise<ArtifactEntry> => {
  const handle = await fs.open(file, "r");
  let stats: BigIntStats;
  try {
    await handle.sync();
    stats = await handle.stat({ bigint: true });
  } finally {
    await handle.close();
  }
  const sha256 = await layout.hashFile(file);
  return {
    file: spec.file,
    bytes: Number(stats.size),
    sha256,
    kind: spec.kind,
    ...(spec.rows === undefined ? {} : { rows: spec.rows }),
    ...(spec.schema === undefined ? {} : { schema: spec.schema }),
  };
};

/**
 * Writes ac/<key>.json (fsync'd under tmp/, then hard-linked into place: created only if absent, never replaced).
 * If a valid entry is already there (another process won the race), keeps that one instead; an invalid one is
 * quarantined by `findValid`, freeing the name.
 */
export const publishEntry = async (
  layout: StoreLayout,
  manifest: Manifest,
  findValid: FindValid,
): Promise<{ manifest: Manifest; won: boolean }> => {
  const target = entryPath(layout.paths, manifest.key);
  const temp = path.join(layout.paths.tmp, tempName("entry"));
  try {
    const handle = await fs.open(temp, "wx");
    try {
      await handle.writeFile(JSON.stringify(manifest, null, 2) + "\n");
      await handle.sync();
    } finally {
      await handle.close();
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await fs.link(temp, target);
        await fsyncDir(layout.paths.ac);
        return { manifest, won: true };
      } catch (error) {
        if (errnoCode(error) !== "EEXIST" || attempt >= 3) throw error;
      }
      const existing = await findValid(manifest.key);
      if (existing !== undefined) return { manifest: existing, won: false };
    }
  } finally {
    await fs.rm(temp, { force: true });
  }
};

/**
 * Publishes a verified set of blobs and their entry: blobs first, each fsync'd and linked into cas/, the entry last,
 * then the view, the stat memo and the ref. What every way into the store ends with: a local commit, a fetch from a
 * remote, a migration. `files` maps each artifact file name to where its bytes are now (they are not moved).
 */
export const publishNode = async (
  layout: StoreLayout,
  manifest: Manifest,
  files: Readonly<Record<string, string>>,
  refDigest: string | undefined,
  findValid: FindValid,
): Promise<Manifest> => {
  for (const a of Object.values(manifest.artifacts)) await publishBlob(layout, files[a.file]!, a.sha256, a.bytes);
  const published = await publishEntry(layout, manifest, findValid);
  if (published.won) {
    await ensureView(layout, manifest);
    const stamps: Record<string, StatStamp> = {};
    for (const a of Object.values(manifest.artifacts)) {
      stamps[a.file] = stampOf(a.sha256, await fs.lstat(blobPath(layout.paths, a.sha256), { bigint: true }));
    }
    await writeMemo(layout, { key: manifest.key, files: stamps });
  }
  if (refDigest !== undefined) {
    await writeRef(layout, manifest.stage, refDigest, {
      nodeId: manifest.nodeId,
      key: manifest.key,
      updatedAt: new Date().toISOString(),
    });
  }
  return published.manifest;
};

/**
 * Publishes a staging dir as the entry of info.key. The staging dir must contain exactly the declared artifact files.
 * Each file is fsync'd and hashed, then {@link publishNode} links the blobs into cas/ and writes the entry last. If a
 * valid entry with this key already exists (another process won the race), ours is dropped and theirs returned.
 * Afterwards the staging dir and scratch/<key> are removed.
 */
export const commit = async (
  layout: StoreLayout,
  staging: Staging,
  info: ManifestInfo,
  artifacts: Readonly<Record<string, ArtifactSpec>>,
  refDigest: string,
  findValid: FindValid,
): Promise<Manifest> => {
  assertKey(info.key);
  assertStaging(layout, staging);
  await checkStagingContents(staging, artifacts);
  const entries: Record<string, ArtifactEntry> = {};
  const files: Record<string, string> = {};
  for (const [name, spec] of Object.entries(artifacts)) {
    const file = path.join(staging.dir, spec.file);
    files[spec.file] = file;
    entries[name] = await entryOf(layout, file, spec);
  }
  const built: Manifest = {
    formatVersion: 1,
    key: info.key,
    nodeId: info.nodeId,
    stage: info.stage,
    version: info.version,
    params: info.params,
    inputs: info.inputs,
    artifacts: entries,
    startedAt: info.startedAt,
    finishedAt: info.finishedAt,
    durationMs: info.durationMs,
    tool: info.tool,
    runtime: info.runtime,
  };
  const checked = parseManifest(JSON.stringify(built)); // never publish what lookup would reject
  if ("error" in checked) throw new Error(`cannot commit ${info.nodeId}: ${checked.error}`);
  const manifest = await publishNode(layout, checked.manifest, files, refDigest, findValid);
  await discard(layout, staging);
  await fs.rm(path.join(layout.paths.scratch, info.key), { recursive: true, force: true });
  return manifest;
};
