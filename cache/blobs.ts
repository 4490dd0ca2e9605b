/**
 * The content-addressed part of the store: publishing a complete file as the blob of its sha256 (stored once,
 * whatever node made it), and the views/<key>/ directories that show an entry's blobs under its artifact file names.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { errnoCode, fsyncDir, ifExists, makeDirs, tempName } from "./fsutil.ts";
import { deleteViaTmp } from "./gc.ts";
import { blobPath, viewDir, type StoreLayout, type StorePaths } from "./layout.ts";
import type { Manifest } from "./manifest.ts";

/** Moves a blob that failed verification aside into quarantine/ (never trusted, removed by gc); false if absent. */
export const quarantineBlob = async (paths: StorePaths, sha256: string): Promise<boolean> => {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const target = path.join(paths.quarantine, `blob-${sha256}-${stamp}-${randomBytes(4).toString("hex")}`);
  try {
    await fs.rename(blobPath(paths, sha256), target);
    return true;
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return false;
    throw error;
  }
};

/**
 * Publishes `file` (complete and fsync'd, whose bytes hash to `sha256`) as that blob, made read-only so that a reader
 * cannot change what other entries share. Creation is a hard link that fails when the blob exists, so a published
 * blob is never replaced: an existing one is kept once its bytes are hashed and match (so that whoever publishes may
 * vouch for it in a stat memo), a wrong one is quarantined first. `file` is moved, not copied: its name is removed
 * afterwards (unless it is the blob itself), so the blob's ctime, which the stat memo records, is final on return.
 */
export const publishBlob = async (layout: StoreLayout, file: string, sha256: string, bytes: number): Promise<void> => {
  const target = blobPath(layout.paths, sha256);
  if (file === target) return; // a blob already in place, verified by the caller
  await fs.chmod(file, 0o444);
  await makeDirs(path.dirname(target));
  for (let attempt = 1; ; attempt++) {
    try {
      await fs.link(file, target);
      await fsyncDir(path.dirname(target));
      break;
    } catch (error) {
      if (errnoCode(error) !== "EEXIST" || attempt >= 3) throw error;
    }
    const existing = await ifExists(() => fs.lstat(target));
    if (existing?.isFile() === true && existing.size === bytes && (await layout.hashFile(target)) === sha256) break;
    await quarantineBlob(layout.paths, sha256);
  }
  await fs.rm(file, { force: true });
};

/** The symlink target of an artifact file in views/<key>/: relative, so that the cache can be moved as a whole. */
const viewTarget = (paths: StorePaths, sha256: string): string =>
  path.relative(path.join(paths.views, "key"), blobPath(paths, sha256));

/** True when views/<key>/ holds exactly one symlink per artifact, each to that artifact's blob. */
const viewIsCurrent = async (paths: StorePaths, manifest: Manifest): Promise<boolean> => {
  const dir = viewDir(paths, manifest.key);
  const entries = await ifExists(() => fs.readdir(dir)).catch(() => undefined);
  const artifacts = Object.values(manifest.artifacts);
  if (entries?.length !== artifacts.length) return false;
  for (const a of artifacts) {
    const target = await ifExists(() => fs.readlink(path.join(dir, a.file))).catch(() => undefined);
    if (target !== viewTarget(paths, a.sha256)) return false;
  }
  return true;
};

/**
 * Makes views/<key>/ show the entry's artifacts as symlinks to their blobs (stages read an upstream's files side by
 * side, e.g. model.json beside weights.bin). Built under tmp/ and renamed into place, so a view is complete or absent;
 * a stale one is replaced. Returns the view's path.
 */
export const ensureView = async (layout: StoreLayout, manifest: Manifest): Promise<string> => {
  const { paths } = layout;
  const dir = viewDir(paths, manifest.key);
  if (await viewIsCurrent(paths, manifest)) return dir;
  const built = path.join(paths.tmp, tempName("view"));
  await fs.mkdir(built);
  try {
    for (const a of Object.values(manifest.artifacts)) {
      await fs.symlink(viewTarget(paths, a.sha256), path.join(built, a.file));
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await fs.rename(built, dir);
        break;
      } catch (error) {
        const code = errnoCode(error);
        if ((code !== "ENOTEMPTY" && code !== "EEXIST" && code !== "ENOTDIR") || attempt >= 3) throw error;
      }
      if (await viewIsCurrent(paths, manifest)) return dir; // another process made it first
      await deleteViaTmp(layout, dir);
    }
  } finally {
    await fs.rm(built, { recursive: true, force: true });
  }
  await fsyncDir(paths.views);
  return dir;
};
