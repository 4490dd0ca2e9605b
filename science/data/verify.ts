/** Checks the distribution files of a data set under a data directory (size, then md5) and words what is wrong. */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { filePath, type DatasetFile, type DatasetSpec } from "./datasets.ts";

/** md5 of a file, hex, computed by streaming it (constant memory). */
export const md5File = async (filePath: string): Promise<string> => {
  const hash = createHash("md5");
  await pipeline(createReadStream(filePath), hash);
  return hash.digest("hex");
};

/** The outcome of checking one file. */
export interface FileCheck {
  readonly file: DatasetFile;
  /** Absolute path where the file is expected. */
  readonly path: string;
  readonly exists: boolean;
  /** Actual size, null when missing. */
  readonly bytes: number | null;
  /** Actual md5, null when missing or when the size is already wrong (no need to hash it then). */
  readonly md5: string | null;
  /** Exists with the expected size and md5. */
  readonly ok: boolean;
}

/**
 * Checks every file of the data set under `dataDir`: existence, size, then md5 (streamed, only when the size is
 * right). Files are checked one after another to keep disk reads sequential.
 */
export const verifyFiles = async (spec: DatasetSpec, dataDir: string): Promise<FileCheck[]> => {
  const checks: FileCheck[] = [];
  for (const file of spec.files) {
    const where = filePath(dataDir, file);
    const info = await stat(where).catch(() => null);
    if (info === null || !info.isFile()) {
      checks.push({ file, path: where, exists: false, bytes: null, md5: null, ok: false });
      continue;
    }
    const md5 = info.size === file.bytes ? await md5File(where) : null;
    checks.push({ file, path: where, exists: true, bytes: info.size, md5, ok: md5 === file.md5 });
  }
  return checks;
};

/** What to do to get a file, as the end of an error message. */
const remedy = (spec: DatasetSpec, check: FileCheck): string => {
  const online =
    spec.download.kind === "files"
      ? "run online to download it"
      : `run online to download and extract ${spec.download.fileName}`;
  return check.exists
    ? `replace ${check.path} with the genuine file, or delete it and ${online}`
    : `put it at ${check.path}, or ${online}`;
};

/**
 * A one-line, actionable message for a failed check (null when the file is fine), e.g.
 * "missing MNIST file train-images-idx3-ubyte.gz (md5 f68b...): put it at /data/MNIST/raw/train-images-idx3-ubyte.gz,
 * or run online to download it".
 */
export const describeFileProblem = (spec: DatasetSpec, check: FileCheck): string | null => {
  if (check.ok) return null;
  const name = path.basename(check.path);
  const expected = `${check.file.bytes} bytes, md5 ${check.file.md5}`;
  if (!check.exists) return `missing ${spec.displayName} file ${name} (md5 ${check.file.md5}): ${remedy(spec, check)}`;
  const found = check.md5 === null ? `${check.bytes} bytes` : `md5 ${check.md5}`;
  return `corrupt ${spec.displayName} file ${name}: found ${found}, expected ${expected}: ${remedy(spec, check)}`;
};

/** Messages for all failed checks, one per line; empty when every file is fine. */
export const describeProblems = (spec: DatasetSpec, checks: ReadonlyArray<FileCheck>): string[] =>
  checks.flatMap((check) => describeFileProblem(spec, check) ?? []);
