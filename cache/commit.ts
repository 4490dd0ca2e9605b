/**
 * Publishing a node's outputs: a private staging directory under tmp/, filled by the producer, then committed as
 * objects/<key> in one atomic rename after every file, the manifest and the directory were fsync'd.
 */
import type { BigIntStats } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { fsyncDir, errnoCode, ifExists, tempName } from "./fsutil.ts";
import { objectDir, type StoreLayout } from "./layout.ts";
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

/** Finds a valid object (quarantining a corrupt one): commit's way to see who won a race for the same key. */
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

/** fsyncs, stats and hashes one staged file. */
const entryOf = async (
  layout: StoreLayout,
  file: string,
  spec: ArtifactSpec,
): Promise<{ entry: ArtifactEntry; stamp: StatStamp }> => {
  const handle = await fs.open(file, "r");
  let stats: BigIntStats;
  try {
    await handle.sync();
    stats = await handle.stat({ bigint: true });
  } finally {
    await handle.close();
  }
  const sha256 = await layout.hashFile(file);
  const entry: ArtifactEntry = {
    file: spec.file,
    bytes: Number(stats.size),
    sha256,
    kind: spec.kind,
    ...(spec.rows === undefined ? {} : { rows: spec.rows }),
    ...(spec.schema === undefined ? {} : { schema: spec.schema }),
  };
  return { entry, stamp: stampOf(sha256, stats) };
};

/** Renames the staging dir to objects/<key>; if a valid object is already there, keeps that one instead. */
const publish = async (
  layout: StoreLayout,
  staging: Staging,
  manifest: Manifest,
  findValid: FindValid,
): Promise<{ manifest: Manifest; won: boolean }> => {
  const target = objectDir(layout.paths, manifest.key);
  for (let attempt = 1; ; attempt++) {
    try {
      await fs.rename(staging.dir, target);
      await fsyncDir(layout.paths.objects);
      return { manifest, won: true };
    } catch (error) {
      const code = errnoCode(error);
      if ((code !== "ENOTEMPTY" && code !== "EEXIST" && code !== "ENOTDIR") || attempt >= 3) throw error;
    }
    const existing = await findValid(manifest.key); // a corrupt one gets quarantined, freeing the name
    if (existing !== undefined) {
      await discard(layout, staging);
      return { manifest: existing, won: false };
    }
  }
};

/**
 * Publishes a staging dir as objects/<info.key>. The staging dir must contain exactly the declared artifact files.
 * Each file is fsync'd and hashed, manifest.json written and fsync'd, the dir fsync'd and renamed into objects/ in one
 * atomic step. If a valid object with this key already exists (another process won the race), ours is discarded and
 * theirs returned. Afterwards the stat memo and refs/<stage>/<refDigest>.json are written and scratch/<key> is removed.
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
  const stamps: Record<string, StatStamp> = {};
  for (const [name, spec] of Object.entries(artifacts)) {
    const { entry, stamp } = await entryOf(layout, path.join(staging.dir, spec.file), spec);
    entries[name] = entry;
    stamps[spec.file] = stamp;
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
  const text = JSON.stringify(built, null, 2) + "\n";
  const checked = parseManifest(text); // never publish what lookup would reject
  if ("error" in checked) throw new Error(`cannot commit ${info.nodeId}: ${checked.error}`);
  const manifestHandle = await fs.open(path.join(staging.dir, "manifest.json"), "wx");
  try {
    await manifestHandle.writeFile(text);
    await manifestHandle.sync();
  } finally {
    await manifestHandle.close();
  }
  await fsyncDir(staging.dir);

  const { manifest, won } = await publish(layout, staging, checked.manifest, findValid);
  if (won) await writeMemo(layout, { key: manifest.key, files: stamps });
  await writeRef(layout, info.stage, refDigest, {
    nodeId: info.nodeId,
    key: info.key,
    updatedAt: new Date().toISOString(),
  });
  await fs.rm(path.join(layout.paths.scratch, info.key), { recursive: true, force: true });
  return manifest;
};
