/**
 * The one-time migration of a store in the layout before the CAS split (objects/<key>/manifest.json beside the
 * artifact files) into the action cache and the CAS. Each object is verified (every file hashed), its files moved
 * into cas/ (hard link, then unlink) and its entry written last, then the object directory removed: a step that a
 * crash interrupts is redone by the next open() (a file already moved is found in cas/), so the migration can be
 * rerun at any point. A corrupt object is moved to quarantine/.
 *
 * A process of the previous version still working on the cache would read objects/ while this moves it away, so the
 * migration refuses to start while any key's lock is held by a live process.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { ifExists } from "./fsutil.ts";
import { deleteViaTmp } from "./gc.ts";
import { blobPath, legacyObjectsDir, lockPath, type StoreLayout } from "./layout.ts";
import { tryAcquireLock } from "./lock.ts";
import { isKey, parseManifest, type Manifest } from "./manifest.ts";

export interface MigrationResult {
  /** Objects now in the action cache. */
  readonly migrated: number;
  /** Objects (or stray entries of objects/) that failed verification, moved to quarantine/, each with its reason. */
  readonly quarantined: ReadonlyArray<{ readonly entry: string; readonly reason: string }>;
}

/** Publishes a verified object's blobs and then its entry (the store's publishNode). */
export type PublishVerified = (manifest: Manifest, files: Readonly<Record<string, string>>) => Promise<Manifest>;

/** Throws, naming the holder, when a live process holds any key's lock (it may be a previous version's run). */
const refuseWhileLocked = async (layout: StoreLayout): Promise<void> => {
  for (const entry of await fs.readdir(layout.paths.locks)) {
    const key = entry.replace(/\.lock$/, "");
    if (!isKey(key)) continue;
    const release = await tryAcquireLock(lockPath(layout.paths, key), layout.paths.tmp);
    if (release === undefined) {
      throw new Error(
        `the cache at ${layout.paths.root} is in the layout before the CAS split and another pipeline process is ` +
          `computing in it (lock ${entry}); let that run finish, then rerun to migrate the cache`,
      );
    }
    await release();
  }
};

/** Why objects/<key>/ cannot be migrated, or its manifest and the path of each artifact file. */
const checkObject = async (
  layout: StoreLayout,
  key: string,
  dir: string,
): Promise<{ readonly problem: string } | { readonly manifest: Manifest; readonly files: Record<string, string> }> => {
  const text = await ifExists(() => fs.readFile(path.join(dir, "manifest.json"), "utf8")).catch(() => undefined);
  if (text === undefined) return { problem: "manifest.json is missing or unreadable" };
  const parsed = parseManifest(text);
  if ("error" in parsed) return { problem: parsed.error };
  if (parsed.manifest.key !== key) return { problem: `manifest.json names key ${parsed.manifest.key}` };
  const files: Record<string, string> = {};
  for (const [name, a] of Object.entries(parsed.manifest.artifacts)) {
    // A migration cut short may already have moved this file into the CAS.
    const moved = blobPath(layout.paths, a.sha256);
    const file =
      (await ifExists(() => fs.lstat(path.join(dir, a.file)))) === undefined ? moved : path.join(dir, a.file);
    const stats = await ifExists(() => fs.lstat(file));
    if (stats?.isFile() !== true || stats.size !== a.bytes) return { problem: `artifact '${name}' is missing or cut` };
    if ((await layout.hashFile(file)) !== a.sha256) return { problem: `artifact '${name}': sha256 differs` };
    files[a.file] = file;
  }
  return { manifest: parsed.manifest, files };
};

/**
 * Moves every object of objects/ into the action cache and the CAS, then removes objects/. Undefined when there was
 * no objects/ (nothing to migrate). Objects whose lock is held are left for the next open().
 */
export const migrateLegacyLayout = async (
  layout: StoreLayout,
  publish: PublishVerified,
): Promise<MigrationResult | undefined> => {
  const objects = legacyObjectsDir(layout.paths.root);
  const entries = await ifExists(() => fs.readdir(objects));
  if (entries === undefined) return undefined;
  await refuseWhileLocked(layout);
  let migrated = 0;
  const quarantined: Array<{ entry: string; reason: string }> = [];
  const quarantine = async (entry: string, reason: string) => {
    const target = path.join(layout.paths.quarantine, `${entry}-${randomBytes(4).toString("hex")}`);
    await fs.rename(path.join(objects, entry), target);
    quarantined.push({ entry, reason });
  };
  for (const entry of entries.sort()) {
    if (!isKey(entry)) {
      await quarantine(entry, "not a cache key");
      continue;
    }
    const release = await tryAcquireLock(lockPath(layout.paths, entry), layout.paths.tmp);
    if (release === undefined) continue;
    try {
      const dir = path.join(objects, entry);
      const checked = await checkObject(layout, entry, dir);
      if ("problem" in checked) {
        await quarantine(entry, checked.problem);
        continue;
      }
      await publish(checked.manifest, checked.files);
      await deleteViaTmp(layout, dir);
      migrated++;
    } finally {
      await release();
    }
  }
  await fs.rmdir(objects).catch(() => undefined); // left in place while a held object remains in it
  return { migrated, quarantined };
};
