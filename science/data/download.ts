/** Fetches the distribution files of a data set when online: single files from mirrors, or members of an archive. */
import { createHash, randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { DatasetSpec } from "./datasets.ts";
import { extractTarGz } from "./tar.ts";
import { describeProblems, verifyFiles, type FileCheck } from "./verify.ts";

/**
 * Downloads `url` to `dest` atomically: the body streams into a temporary file beside `dest` (hashed on the way),
 * which is renamed to `dest` only when the download completed and, if given, its md5 matches. On any failure the
 * temporary file is removed and `dest` is untouched. Returns the size and md5 of what was written.
 */
export const downloadFile = async (
  url: string,
  dest: string,
  expectedMd5?: string,
): Promise<{ readonly bytes: number; readonly md5: string }> => {
  await mkdir(path.dirname(dest), { recursive: true });
  const temp = `${dest}.${randomUUID()}.part`;
  try {
    const response = await fetch(url).catch((error: Error) => {
      // Node's fetch says only "fetch failed"; the reason (DNS, refused, TLS...) is in `cause`.
      const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
      throw new Error(`download of ${url} failed: ${error.message}${cause}`);
    });
    if (!response.ok || response.body === null) {
      throw new Error(`download of ${url} failed: HTTP ${response.status} ${response.statusText}`);
    }
    const hash = createHash("md5");
    let bytes = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        bytes += chunk.length;
        done(null, chunk);
      },
    });
    await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), tap, createWriteStream(temp));
    const md5 = hash.digest("hex");
    if (expectedMd5 !== undefined && md5 !== expectedMd5) {
      throw new Error(`download of ${url} has md5 ${md5} (${bytes} bytes), expected ${expectedMd5}`);
    }
    await rename(temp, dest);
    return { bytes, md5 };
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
};

/** Downloads from the first URL that works; the error lists every URL's failure. */
const downloadFromMirrors = async (urls: ReadonlyArray<string>, dest: string, md5: string): Promise<void> => {
  const failures: string[] = [];
  for (const url of urls) {
    try {
      await downloadFile(url, dest, md5);
      return;
    } catch (error) {
      failures.push((error as Error).message);
    }
  }
  throw new Error(`could not download ${path.basename(dest)}: ${failures.join("; ")}`);
};

/**
 * Downloads whatever is missing or corrupt under `dataDir` (online only), then re-verifies everything and throws
 * with the remaining problems if any. MNIST: each bad file from the first working mirror. CIFAR-10: the archive is
 * downloaded beside the data (md5-checked), the bad files are extracted from it, and the archive is deleted.
 */
export const downloadDataset = async (spec: DatasetSpec, dataDir: string): Promise<FileCheck[]> => {
  const bad = (await verifyFiles(spec, dataDir)).filter((check) => !check.ok);
  if (bad.length > 0) {
    const source = spec.download;
    if (source.kind === "files") {
      for (const check of bad) {
        const name = path.basename(check.path);
        await downloadFromMirrors(
          source.baseUrls.map((base) => `${base}${name}`),
          check.path,
          check.file.md5,
        );
      }
    } else {
      const archive = path.resolve(dataDir, source.fileName);
      try {
        await downloadFromMirrors(source.urls, archive, source.md5);
        await extractTarGz(archive, new Map(bad.map((check) => [check.file.relativePath, check.path])));
      } finally {
        await rm(archive, { force: true });
      }
    }
  }
  const checks = await verifyFiles(spec, dataDir);
  const problems = describeProblems(spec, checks);
  if (problems.length > 0) throw new Error(problems.join("\n"));
  return checks;
};
