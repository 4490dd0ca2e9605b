/**
 * The two data sets (MNIST, CIFAR-10): their standard distribution files, how to verify them, how to fetch them
 * when online, and how to load a split as HWC uint8 pixels + labels.
 *
 * Files live under a data directory in the standard layouts: `MNIST/raw/*.gz` (the four original IDX files, as
 * torchvision stores them) and `cifar-10-batches-bin/*` (the content of the official binary archive). The sizes and
 * md5s below are the published ones; they were checked against the genuine files in /work/shared/datasets.
 */
import { createHash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { pipeline as pipelineStreams, Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { createGunzip } from "node:zlib";
import { concatCifarBatches, decodeCifarBatch, parseCifarClassNames } from "./cifar.ts";
import { decodeIdxImages, decodeIdxLabels } from "./idx.ts";

export type DatasetName = "mnist" | "cifar10";
export type Split = "train" | "test";
export const DATASET_NAMES: ReadonlyArray<DatasetName> = ["mnist", "cifar10"];
export const SPLITS: ReadonlyArray<Split> = ["train", "test"];

/** One distribution file, at `relativePath` under the data directory. */
export interface DatasetFile {
  /** Path under the data directory, with forward slashes, e.g. `MNIST/raw/train-images-idx3-ubyte.gz`. */
  readonly relativePath: string;
  readonly bytes: number;
  readonly md5: string;
}

/** How the files are obtained online. */
export type DownloadSource =
  /** Each file separately: `${baseUrl}${basename(relativePath)}`, base URLs tried in order (mirrors). */
  | { readonly kind: "files"; readonly baseUrls: ReadonlyArray<string> }
  /**
   * One .tar.gz archive whose members are named exactly like the files' relative paths
   * (e.g. `cifar-10-batches-bin/data_batch_1.bin`); only those members are extracted.
   */
  | {
      readonly kind: "archive";
      readonly fileName: string;
      readonly urls: ReadonlyArray<string>;
      readonly bytes: number;
      readonly md5: string;
    };

export interface DatasetSpec {
  readonly name: DatasetName;
  /** Human name used in messages: "MNIST", "CIFAR-10". */
  readonly displayName: string;
  /** Shape of one image as stored: [height, width, channels], pixels HWC interleaved uint8. */
  readonly imageShape: readonly [number, number, number];
  readonly classCount: number;
  readonly classNames: ReadonlyArray<string>;
  readonly splitSizes: Readonly<Record<Split, number>>;
  /** Every distribution file (what `verifyFiles` checks and `downloadDataset` fetches). */
  readonly files: ReadonlyArray<DatasetFile>;
  /**
   * The files each split is decoded from, in order: MNIST [images, labels] (IDX); CIFAR-10 the batch files
   * whose records are concatenated.
   */
  readonly splitFiles: Readonly<Record<Split, ReadonlyArray<DatasetFile>>>;
  readonly download: DownloadSource;
  /** Published per-channel mean of the training pixels on the 0..1 scale. */
  readonly publishedMean: ReadonlyArray<number>;
  /** Published per-channel (population) std of the training pixels on the 0..1 scale. */
  readonly publishedStd: ReadonlyArray<number>;
  /** Published count of each label per split. */
  readonly labelHistogram: Readonly<Record<Split, ReadonlyArray<number>>>;
}

const mnistFile = (name: string, bytes: number, md5: string): DatasetFile => ({
  relativePath: `MNIST/raw/${name}`,
  bytes,
  md5,
});
export const MNIST_FILES = {
  trainImages: mnistFile("train-images-idx3-ubyte.gz", 9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
  trainLabels: mnistFile("train-labels-idx1-ubyte.gz", 28881, "d53e105ee54ea40749a09fcbcd1e9432"),
  testImages: mnistFile("t10k-images-idx3-ubyte.gz", 1648877, "9fb629c4189551a2d022fa330f9573f3"),
  testLabels: mnistFile("t10k-labels-idx1-ubyte.gz", 4542, "ec29112dd5afa0611ce80d1b7f02629c"),
};

const CIFAR_DIR = "cifar-10-batches-bin";
const cifarBatch = (name: string, md5: string): DatasetFile => ({
  relativePath: `${CIFAR_DIR}/${name}`,
  bytes: 30730000,
  md5,
});
export const CIFAR_FILES = {
  train: [
    cifarBatch("data_batch_1.bin", "5dd7e06a14cb22eb9f671a540d1b7c25"),
    cifarBatch("data_batch_2.bin", "5ea93a67294ea407fff1d09f752e9692"),
    cifarBatch("data_batch_3.bin", "942cd6a4bcdd0dd3c604fbe906cb4421"),
    cifarBatch("data_batch_4.bin", "ae636b3ba5c66a11e91e8cb52e771fcb"),
    cifarBatch("data_batch_5.bin", "53f37980c15c3d472c316c40844f3f0d"),
  ],
  test: [cifarBatch("test_batch.bin", "803d5f7f4d78ea53de84dbe85f74fb6d")],
  meta: { relativePath: `${CIFAR_DIR}/batches.meta.txt`, bytes: 61, md5: "728051cd483f366e254dddb25bead8b3" },
};

export const MNIST: DatasetSpec = {
  name: "mnist",
  displayName: "MNIST",
  imageShape: [28, 28, 1],
  classCount: 10,
  classNames: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
  splitSizes: { train: 60000, test: 10000 },
  files: [MNIST_FILES.trainImages, MNIST_FILES.trainLabels, MNIST_FILES.testImages, MNIST_FILES.testLabels],
  splitFiles: {
    train: [MNIST_FILES.trainImages, MNIST_FILES.trainLabels],
    test: [MNIST_FILES.testImages, MNIST_FILES.testLabels],
  },
  // The mirrors torchvision uses, in its order (yann.lecun.com often refuses automated downloads nowadays).
  download: {
    kind: "files",
    baseUrls: ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
  },
  publishedMean: [0.1307],
  publishedStd: [0.3081],
  labelHistogram: {
    train: [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    test: [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
  },
};

export const CIFAR10: DatasetSpec = {
  name: "cifar10",
  displayName: "CIFAR-10",
  imageShape: [32, 32, 3],
  classCount: 10,
  classNames: ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
  splitSizes: { train: 50000, test: 10000 },
  files: [...CIFAR_FILES.train, ...CIFAR_FILES.test, CIFAR_FILES.meta],
  splitFiles: { train: CIFAR_FILES.train, test: CIFAR_FILES.test },
  // Archive size as published (the archive itself is not in the offline copy; its md5 is checked after download).
  download: {
    kind: "archive",
    fileName: "cifar-10-binary.tar.gz",
    urls: ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"],
    bytes: 170052171,
    md5: "c32a1d4ab5d03f1284b67883e8d87530",
  },
  publishedMean: [0.4914, 0.4822, 0.4465],
  publishedStd: [0.247, 0.2435, 0.2616],
  labelHistogram: { train: new Array<number>(10).fill(5000), test: new Array<number>(10).fill(1000) },
};

export const DATASETS: Readonly<Record<DatasetName, DatasetSpec>> = { mnist: MNIST, cifar10: CIFAR10 };

/** Absolute path of a file of the data set under `dataDir`. */
export const filePath = (dataDir: string, file: DatasetFile): string =>
  path.resolve(dataDir, ...file.relativePath.split("/"));

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

/** Parses a NUL-terminated (or field-filling) ASCII string of a tar header. */
const tarString = (header: Buffer, offset: number, length: number): string => {
  const field = header.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString("latin1");
};

/** Parses an octal number field of a tar header (space/NUL padded). */
const tarOctal = (header: Buffer, offset: number, length: number): number => {
  const text = tarString(header, offset, length).trim();
  if (!/^[0-7]+$/.test(text)) throw new Error(`tar: bad octal field "${text}" (base-256 sizes are not supported)`);
  return Number.parseInt(text, 8);
};

/** Reads exact byte counts from an async stream of chunks. */
class ByteReader {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  constructor(private readonly source: AsyncIterator<Buffer>) {}

  /** The next `n` bytes; null at a clean end of stream; throws when the stream ends mid-read. */
  async read(n: number): Promise<Buffer | null> {
    while (this.bufferedBytes < n) {
      const next = await this.source.next();
      if (next.done === true) {
        if (this.bufferedBytes === 0) return null;
        throw new Error(`tar: archive truncated (wanted ${n} bytes, ${this.bufferedBytes} left)`);
      }
      this.buffered.push(next.value);
      this.bufferedBytes += next.value.length;
    }
    const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered, this.bufferedBytes);
    this.buffered = all.length > n ? [all.subarray(n)] : [];
    this.bufferedBytes = all.length - n;
    return all.subarray(0, n);
  }
}

const TAR_BLOCK = 512;

/** The `path` of a pax extended header body (records "<length> <key>=<value>\n"), if it has one. */
const paxPath = (body: Buffer): string | undefined => {
  let position = 0;
  let found: string | undefined;
  while (position < body.length) {
    const space = body.indexOf(0x20, position);
    const length = Number.parseInt(body.toString("latin1", position, space), 10);
    if (space === -1 || !(length > 0)) throw new Error("tar: malformed pax extended header");
    const record = body.toString("utf8", space + 1, position + length - 1); // without the trailing newline
    const equals = record.indexOf("=");
    if (record.slice(0, equals) === "path") found = record.slice(equals + 1);
    position += length;
  }
  return found;
};

/**
 * Extracts selected regular files from a .tar.gz, streaming (memory: one member at a time).
 *
 * `members` maps an archive member name (e.g. `cifar-10-batches-bin/data_batch_1.bin`) to its destination path;
 * other members are skipped, so no path from the archive is ever used as a destination. Each file is written
 * atomically (temp + rename). A minimal reader of POSIX ustar / pax and GNU tar: header checksums are verified, long
 * names are taken from the ustar prefix field, a pax `path` record or a GNU long-name entry; links, directories
 * and other entry types are skipped. Returns the member names extracted.
 */
export const extractTarGz = async (
  archivePath: string,
  members: ReadonlyMap<string, string>,
): Promise<string[]> => {
  // stream.pipeline (not .pipe) so that a read error reaches the iterator and destroy() closes the file.
  const stream = pipelineStreams(createReadStream(archivePath), createGunzip(), () => {});
  const reader = new ByteReader(stream[Symbol.asyncIterator]());
  const extracted: string[] = [];
  let longName: string | undefined; // from a pax or GNU long-name entry, applies to the next entry
  try {
    for (;;) {
      const header = await reader.read(TAR_BLOCK);
      if (header === null || header.every((b) => b === 0)) break; // end-of-archive marker (or bare end)
      const storedChecksum = tarOctal(header, 148, 8);
      let checksum = 0;
      for (let i = 0; i < TAR_BLOCK; i++) checksum += i >= 148 && i < 156 ? 0x20 : (header[i] ?? 0);
      if (checksum !== storedChecksum) throw new Error(`tar: header checksum mismatch (corrupt archive?)`);
      const isPosixUstar = tarString(header, 257, 6) === "ustar";
      const prefix = isPosixUstar && header[262] === 0 ? tarString(header, 345, 155) : "";
      const baseName = tarString(header, 0, 100);
      const name = longName ?? (prefix === "" ? baseName : `${prefix}/${baseName}`);
      const size = tarOctal(header, 124, 12);
      const type = String.fromCharCode(header[156] ?? 0);
      const padded = Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
      const body = padded === 0 ? Buffer.alloc(0) : await reader.read(padded);
      if (body === null) throw new Error(`tar: archive truncated in member ${name}`);
      if (type === "x" || type === "L") {
        longName = type === "x" ? paxPath(body.subarray(0, size)) : tarString(body, 0, size);
        continue;
      }
      longName = undefined;
      const dest = members.get(name.replace(/^\.\//, ""));
      if ((type === "0" || type === "\0") && dest !== undefined) {
        await mkdir(path.dirname(dest), { recursive: true });
        const temp = `${dest}.${randomUUID()}.part`;
        try {
          await writeFile(temp, body.subarray(0, size));
          await rename(temp, dest);
        } catch (error) {
          await rm(temp, { force: true });
          throw error;
        }
        extracted.push(name);
      }
    }
  } finally {
    stream.destroy();
  }
  return extracted;
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
        await downloadFromMirrors(source.baseUrls.map((base) => `${base}${name}`), check.path, check.file.md5);
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

/** A decoded split: `count` images of [height, width, channels] HWC interleaved uint8 pixels, and their labels. */
export interface ImageSplit {
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  readonly pixels: Uint8Array;
  readonly labels: Uint8Array;
}

const readData = (dataDir: string, file: DatasetFile): Promise<Buffer> => readFile(filePath(dataDir, file));

/** Checks that a decoded split has the data set's published size and image shape. */
const checkSplit = (spec: DatasetSpec, split: Split, decoded: ImageSplit): ImageSplit => {
  const [height, width, channels] = spec.imageShape;
  const expected = spec.splitSizes[split];
  if (decoded.count !== expected || decoded.labels.length !== expected) {
    throw new Error(
      `${spec.displayName} ${split}: decoded ${decoded.count} images and ${decoded.labels.length} labels, ` +
        `expected ${expected}`,
    );
  }
  if (decoded.height !== height || decoded.width !== width || decoded.channels !== channels) {
    throw new Error(
      `${spec.displayName} ${split}: images are ${decoded.height}x${decoded.width}x${decoded.channels}, ` +
        `expected ${height}x${width}x${channels}`,
    );
  }
  return decoded;
};

/**
 * Reads and decodes one split from the distribution files under `dataDir` (run `verifyFiles` first for
 * checksums; this checks only structure, sizes and shape). Pixels are HWC interleaved uint8.
 */
export const loadSplit = async (spec: DatasetSpec, dataDir: string, split: Split): Promise<ImageSplit> => {
  const files = spec.splitFiles[split];
  if (spec.name === "mnist") {
    const [imagesFile, labelsFile] = files;
    if (imagesFile === undefined || labelsFile === undefined) {
      throw new Error(`MNIST ${split}: the spec must list [images, labels] files`);
    }
    const images = decodeIdxImages(await readData(dataDir, imagesFile));
    const { labels } = decodeIdxLabels(await readData(dataDir, labelsFile));
    return checkSplit(spec, split, {
      count: images.count,
      height: images.rows,
      width: images.cols,
      channels: 1,
      pixels: images.pixels,
      labels,
    });
  }
  const batches = [];
  for (const file of files) batches.push(decodeCifarBatch(await readData(dataDir, file)));
  const { count, pixels, labels } = concatCifarBatches(batches);
  return checkSplit(spec, split, { count, height: 32, width: 32, channels: 3, pixels, labels });
};

/** CIFAR-10 class names read from batches.meta.txt (in label order). */
export const readCifarClassNames = async (dataDir: string): Promise<string[]> =>
  parseCifarClassNames((await readData(dataDir, CIFAR_FILES.meta)).toString("utf8"));
