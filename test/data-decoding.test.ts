/**
 * Data decoding on hand-made bytes: IDX and CIFAR-10 records, statistics, file verification messages, and the
 * online helpers (download, tar extraction) against a local HTTP server only.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CIFAR_RECORD_BYTES,
  concatCifarBatches,
  decodeCifarBatch,
  parseCifarClassNames,
} from "../science/data/cifar.ts";
import { CIFAR10, MNIST, type DatasetSpec } from "../science/data/datasets.ts";
import { downloadDataset, downloadFile } from "../science/data/download.ts";
import { loadSplit } from "../science/data/load.ts";
import { extractTarGz } from "../science/data/tar.ts";
import { describeFileProblem, describeProblems, md5File, verifyFiles } from "../science/data/verify.ts";
import { decodeIdxImages, decodeIdxLabels } from "../science/data/idx.ts";
import { channelMeanStd, labelHistogram } from "../science/data/stats.ts";

const md5 = (bytes: Uint8Array | string): string => createHash("md5").update(bytes).digest("hex");

/** IDX bytes built by hand: big-endian magic, dims, then the elements. */
const idx = (magic: number, dims: number[], elements: Uint8Array): Buffer => {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, elements]);
};

/** Deterministic pseudo-random bytes (a small LCG), so failures reproduce. */
const pseudoRandomBytes = (n: number, seed: number): Uint8Array => {
  const out = new Uint8Array(n);
  let state = seed >>> 0;
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state >>> 24;
  }
  return out;
};

/** A CIFAR record: label, then R, G, B planes given as functions of (y, x). */
const cifarRecord = (label: number, r: (y: number, x: number) => number, g: typeof r, b: typeof r): Uint8Array => {
  const record = new Uint8Array(CIFAR_RECORD_BYTES);
  record[0] = label;
  [r, g, b].forEach((plane, c) => {
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) record[1 + c * 1024 + y * 32 + x] = plane(y, x);
  });
  return record;
};

const tempDirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(path.join(tmpdir(), "data-decoding-"));
  tempDirs.push(dir);
  return dir;
};
afterAll(() => tempDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe("IDX decoding", () => {
  const pixels = pseudoRandomBytes(3 * 4 * 5, 1);
  const labels = Uint8Array.from([7, 0, 9]);

  it("round-trips gzipped and raw image files", () => {
    for (const bytes of [gzipSync(idx(0x803, [3, 4, 5], pixels)), idx(0x803, [3, 4, 5], pixels)]) {
      const decoded = decodeIdxImages(bytes);
      expect([decoded.count, decoded.rows, decoded.cols]).toEqual([3, 4, 5]);
      expect(Array.from(decoded.pixels)).toEqual(Array.from(pixels));
      expect(Buffer.isBuffer(decoded.pixels)).toBe(false); // a plain copy, not a view into the gunzip buffer
    }
  });

  it("round-trips label files", () => {
    const decoded = decodeIdxLabels(gzipSync(idx(0x801, [3], labels)));
    expect(decoded.count).toBe(3);
    expect(Array.from(decoded.labels)).toEqual([7, 0, 9]);
  });

  it("rejects a wrong magic number (labels read as images and vice versa)", () => {
    expect(() => decodeIdxImages(gzipSync(idx(0x801, [3], labels)))).toThrow(
      /magic number 0x00000801, expected 0x00000803/,
    );
    expect(() => decodeIdxLabels(idx(0x803, [3, 4, 5], pixels))).toThrow(
      /magic number 0x00000803, expected 0x00000801/,
    );
  });

  it("rejects data shorter or longer than the dimensions say", () => {
    expect(() => decodeIdxImages(idx(0x803, [3, 4, 5], pixels.subarray(1)))).toThrow(/need 76 bytes, file has 75/);
    expect(() => decodeIdxLabels(idx(0x801, [2], labels))).toThrow(/need 10 bytes, file has 11/);
    expect(() => decodeIdxImages(Buffer.from([0, 0, 8, 3, 0, 0]))).toThrow(/shorter than its 16-byte header/);
  });

  it("rejects a truncated gzip stream", () => {
    const gz = gzipSync(idx(0x803, [3, 4, 5], pixels));
    expect(() => decodeIdxImages(gz.subarray(0, gz.length - 10))).toThrow(/gzip decompression failed/);
  });
});

describe("CIFAR-10 decoding", () => {
  it("converts CHW planes to HWC: a pixel with distinct R, G, B", () => {
    const first = cifarRecord(
      6,
      (y, x) => (y === 2 && x === 5 ? 10 : 0),
      (y, x) => (y === 2 && x === 5 ? 20 : 1),
      () => 2,
    );
    const second = cifarRecord(
      9,
      () => 100,
      () => 150,
      (y, x) => (y === 31 && x === 0 ? 250 : 200),
    );
    const batch = decodeCifarBatch(Buffer.concat([first, second]));
    expect(batch.count).toBe(2);
    expect(Array.from(batch.labels)).toEqual([6, 9]);
    const at = (i: number, y: number, x: number) => {
      const start = ((i * 32 + y) * 32 + x) * 3;
      return Array.from(batch.pixels.subarray(start, start + 3));
    };
    expect(at(0, 2, 5)).toEqual([10, 20, 2]);
    expect(at(0, 2, 6)).toEqual([0, 1, 2]);
    expect(at(1, 31, 0)).toEqual([100, 150, 250]);
    expect(at(1, 0, 0)).toEqual([100, 150, 200]);
  });

  it("matches a direct per-pixel transposition on random records", () => {
    const count = 3;
    const bytes = pseudoRandomBytes(count * CIFAR_RECORD_BYTES, 7);
    for (let i = 0; i < count; i++) bytes[i * CIFAR_RECORD_BYTES] = i + 2; // valid labels
    const batch = decodeCifarBatch(bytes);
    for (let i = 0; i < count; i++) {
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          for (let c = 0; c < 3; c++) {
            const chw = bytes[i * CIFAR_RECORD_BYTES + 1 + c * 1024 + y * 32 + x];
            const hwc = batch.pixels[i * 3072 + (y * 32 + x) * 3 + c];
            if (chw !== hwc) expect({ i, y, x, c, hwc }).toEqual({ i, y, x, c, hwc: chw });
          }
        }
      }
    }
    expect(Array.from(batch.labels)).toEqual([2, 3, 4]);
  });

  it("rejects a partial record and a label outside 0..9", () => {
    expect(() => decodeCifarBatch(new Uint8Array(CIFAR_RECORD_BYTES + 1))).toThrow(
      /not a whole number of 3073-byte records/,
    );
    const bad = new Uint8Array(2 * CIFAR_RECORD_BYTES);
    bad[CIFAR_RECORD_BYTES] = 10;
    expect(() => decodeCifarBatch(bad)).toThrow(/record 1 has label 10/);
  });

  it("concatenates batches in order", () => {
    const a = decodeCifarBatch(
      cifarRecord(
        1,
        () => 11,
        () => 12,
        () => 13,
      ),
    );
    const b = decodeCifarBatch(
      Buffer.concat([
        cifarRecord(
          2,
          () => 21,
          () => 22,
          () => 23,
        ),
        cifarRecord(
          3,
          () => 31,
          () => 32,
          () => 33,
        ),
      ]),
    );
    const all = concatCifarBatches([a, b]);
    expect(all.count).toBe(3);
    expect(Array.from(all.labels)).toEqual([1, 2, 3]);
    expect(Array.from(all.pixels.subarray(3072, 3075))).toEqual([21, 22, 23]);
    expect(Array.from(all.pixels.subarray(3 * 3072 - 3))).toEqual([31, 32, 33]);
  });

  it("parses class names and checks their number", () => {
    expect(parseCifarClassNames("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n")).toEqual("abcdefghij".split(""));
    expect(() => parseCifarClassNames("a\nb\n")).toThrow(/2 class names, expected 10/);
  });
});

describe("statistics", () => {
  /** Two-pass mean and population std of value / 255 for one channel: the slow, obvious way. */
  const slowMeanStd = (pixels: Uint8Array, channels: number, channel: number) => {
    const values: number[] = [];
    for (let i = channel; i < pixels.length; i += channels) values.push((pixels[i] ?? 0) / 255);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length;
    return { mean, std: Math.sqrt(variance) };
  };

  it("gives a hand-computed result on a tiny array", () => {
    // Channel 0: 0, 255, 0, 255 -> mean 0.5, std 0.5. Channel 1: all 51 -> mean 0.2, std 0.
    const stats = channelMeanStd(Uint8Array.from([0, 51, 255, 51, 0, 51, 255, 51]), 2);
    expect(stats.count).toBe(4);
    expect(stats.mean[0]).toBeCloseTo(0.5, 15);
    expect(stats.std[0]).toBeCloseTo(0.5, 15);
    expect(stats.mean[1]).toBeCloseTo(0.2, 15);
    expect(stats.std[1]).toBe(0);
  });

  it("agrees with a direct two-pass computation on random pixels", () => {
    for (const channels of [1, 3]) {
      const pixels = pseudoRandomBytes(channels * 5000, channels);
      const stats = channelMeanStd(pixels, channels);
      for (let c = 0; c < channels; c++) {
        const slow = slowMeanStd(pixels, channels, c);
        expect(Math.abs((stats.mean[c] ?? NaN) - slow.mean)).toBeLessThan(1e-12);
        expect(Math.abs((stats.std[c] ?? NaN) - slow.std)).toBeLessThan(1e-12);
      }
    }
  });

  it("rejects a length that is not a multiple of the channel count", () => {
    expect(() => channelMeanStd(new Uint8Array(4), 3)).toThrow(/not a positive multiple of 3 channels/);
    expect(() => channelMeanStd(new Uint8Array(0), 1)).toThrow(/not a positive multiple/);
  });

  it("counts labels and rejects out-of-range ones", () => {
    expect(labelHistogram(Uint8Array.from([2, 0, 2, 3, 2]), 4)).toEqual([1, 0, 3, 1]);
    expect(() => labelHistogram(Uint8Array.from([0, 4]), 4)).toThrow(/label 4 at index 1/);
  });
});

describe("file verification", () => {
  it("reports a missing and a corrupted file with actionable one-line messages", async () => {
    const dir = tempDir();
    const raw = path.join(dir, "MNIST", "raw");
    mkdirSync(raw, { recursive: true });
    writeFileSync(path.join(raw, "train-labels-idx1-ubyte.gz"), Buffer.alloc(28881)); // right size, wrong content
    writeFileSync(path.join(raw, "t10k-labels-idx1-ubyte.gz"), "short"); // wrong size
    const checks = await verifyFiles(MNIST, dir);
    expect(checks.map((c) => [path.basename(c.path), c.exists, c.ok])).toEqual([
      ["train-images-idx3-ubyte.gz", false, false],
      ["train-labels-idx1-ubyte.gz", true, false],
      ["t10k-images-idx3-ubyte.gz", false, false],
      ["t10k-labels-idx1-ubyte.gz", true, false],
    ]);
    const messages = describeProblems(MNIST, checks);
    expect(messages).toHaveLength(4);
    for (const message of messages) expect(message).not.toContain("\n");
    expect(messages[0]).toBe(
      `missing MNIST file train-images-idx3-ubyte.gz (md5 f68b3c2dcbeaaa9fbdd348bbdeb94873): ` +
        `put it at ${path.join(raw, "train-images-idx3-ubyte.gz")}, or run online to download it`,
    );
    expect(messages[1]).toBe(
      `corrupt MNIST file train-labels-idx1-ubyte.gz: found md5 ${md5(Buffer.alloc(28881))}, ` +
        `expected 28881 bytes, md5 d53e105ee54ea40749a09fcbcd1e9432: ` +
        `replace ${path.join(raw, "train-labels-idx1-ubyte.gz")} with the genuine file, ` +
        `or delete it and run online to download it`,
    );
    expect(messages[3]).toMatch(/^corrupt MNIST file t10k-labels-idx1-ubyte\.gz: found 5 bytes, expected 4542 bytes/);
  });

  it("names the CIFAR archive as the online remedy", async () => {
    const [first] = await verifyFiles(CIFAR10, tempDir());
    expect(first).toBeDefined();
    expect(describeFileProblem(CIFAR10, first!)).toBe(
      `missing CIFAR-10 file data_batch_1.bin (md5 5dd7e06a14cb22eb9f671a540d1b7c25): put it at ${first!.path}, ` +
        `or run online to download and extract cifar-10-binary.tar.gz`,
    );
    expect(first!.path.endsWith(path.join("cifar-10-batches-bin", "data_batch_1.bin"))).toBe(true);
  });

  it("accepts a file with the expected size and md5", async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, "x"));
    writeFileSync(path.join(dir, "x", "abc.txt"), "abc");
    const abcMd5 = "900150983cd24fb0d6963f7d28e17f72"; // md5("abc"), RFC 1321 test suite
    const spec: DatasetSpec = { ...MNIST, files: [{ relativePath: "x/abc.txt", bytes: 3, md5: abcMd5 }] };
    const [check] = await verifyFiles(spec, dir);
    expect(check).toMatchObject({ exists: true, bytes: 3, md5: abcMd5, ok: true });
    expect(describeFileProblem(spec, check!)).toBeNull();
  });

  it("streams md5 over a file larger than one read chunk", async () => {
    const file = path.join(tempDir(), "big.bin");
    const bytes = pseudoRandomBytes(300_000, 3);
    writeFileSync(file, bytes);
    expect(await md5File(file)).toBe(md5(bytes));
  });
});

describe("loading a split from files", () => {
  it("decodes MNIST-format files into an HWC split and checks its size", async () => {
    const dir = tempDir();
    const images = pseudoRandomBytes(2 * 28 * 28, 5);
    writeFileSync(path.join(dir, "img.gz"), gzipSync(idx(0x803, [2, 28, 28], images)));
    writeFileSync(path.join(dir, "lab.gz"), gzipSync(idx(0x801, [2], Uint8Array.from([3, 8]))));
    const files = [
      { relativePath: "img.gz", bytes: 0, md5: "" },
      { relativePath: "lab.gz", bytes: 0, md5: "" },
    ];
    const spec: DatasetSpec = {
      ...MNIST,
      splitSizes: { train: 2, test: 5 },
      splitFiles: { train: files, test: files },
    };
    const split = await loadSplit(spec, dir, "train");
    expect([split.count, split.height, split.width, split.channels]).toEqual([2, 28, 28, 1]);
    expect(Array.from(split.labels)).toEqual([3, 8]);
    expect(Array.from(split.pixels)).toEqual(Array.from(images));
    await expect(loadSplit(spec, dir, "test")).rejects.toThrow(/MNIST test: decoded 2 images and 2 labels, expected 5/);
  });

  it("decodes and concatenates CIFAR batch files", async () => {
    const dir = tempDir();
    writeFileSync(
      path.join(dir, "a.bin"),
      cifarRecord(
        4,
        () => 1,
        () => 2,
        () => 3,
      ),
    );
    writeFileSync(
      path.join(dir, "b.bin"),
      cifarRecord(
        5,
        () => 7,
        () => 8,
        () => 9,
      ),
    );
    const files = [
      { relativePath: "a.bin", bytes: 0, md5: "" },
      { relativePath: "b.bin", bytes: 0, md5: "" },
    ];
    const spec: DatasetSpec = {
      ...CIFAR10,
      splitSizes: { train: 2, test: 2 },
      splitFiles: { train: files, test: files },
    };
    const split = await loadSplit(spec, dir, "train");
    expect([split.count, split.height, split.width, split.channels]).toEqual([2, 32, 32, 3]);
    expect(Array.from(split.labels)).toEqual([4, 5]);
    expect(Array.from(split.pixels.subarray(3072, 3078))).toEqual([7, 8, 9, 7, 8, 9]);
  });
});

/** True when a system `tar` is available (used to build archives with a real tar implementation). */
const hasTar = (() => {
  try {
    execFileSync("tar", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

/** Builds a .tar.gz of `files` (relative path -> content) with the system tar in the given format. */
const makeTarGz = (files: Record<string, Uint8Array | string>, format: string): string => {
  const src = tempDir();
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
    writeFileSync(path.join(src, name), content);
  }
  const archive = path.join(tempDir(), "archive.tar.gz");
  execFileSync("tar", [`--format=${format}`, "-czf", archive, "-C", src, ...Object.keys(files)]);
  return archive;
};

const tarSuiteName = hasTar
  ? "tar.gz extraction (archives made by the system tar)"
  : "tar.gz extraction: SKIPPED, no `tar` command to build test archives";

describe.skipIf(!hasTar)(tarSuiteName, () => {
  const shortNames: Record<string, Uint8Array | string> = {
    "d/wanted.bin": pseudoRandomBytes(70_000, 11), // spans many 512-byte blocks and a partial last one
    "d/empty.txt": "",
    "d/skipped.txt": "not extracted",
  };
  // A path over 100 characters: stored with the ustar prefix field (ustar), a pax `path` record (pax) or a GNU
  // long-name entry (gnu).
  const longName = `d/${"x".repeat(90)}/long-name-file-${"y".repeat(100)}.bin`;

  for (const format of ["ustar", "pax", "gnu"]) {
    it(`extracts only the selected members (${format} format)`, async () => {
      const name = format === "ustar" ? longName.replace("y".repeat(100), "y") : longName; // ustar: name <= 100
      const files = { ...shortNames, [name]: pseudoRandomBytes(1000, 12) };
      const archive = makeTarGz(files, format);
      const out = tempDir();
      const wanted = Object.keys(files).filter((name) => name !== "d/skipped.txt");
      const destination = (name: string) => path.join(out, "o", path.basename(name));
      const extracted = await extractTarGz(archive, new Map(wanted.map((name) => [name, destination(name)])));
      expect([...extracted].sort()).toEqual([...wanted].sort());
      for (const name of wanted) expect(md5(readFileSync(destination(name)))).toBe(md5(files[name]!));
      expect(readdirSync(path.join(out, "o")).sort()).toEqual(wanted.map((name) => path.basename(name)).sort());
    });
  }

  it("fails clearly on a corrupt archive", async () => {
    const archive = makeTarGz({ "a.bin": pseudoRandomBytes(5000, 1) }, "ustar");
    const gz = readFileSync(archive);
    writeFileSync(archive, gz.subarray(0, gz.length - 100));
    await expect(extractTarGz(archive, new Map([["a.bin", path.join(tempDir(), "a.bin")]]))).rejects.toThrow();
    const corruptHeader = path.join(tempDir(), "bad.tar.gz");
    const tar = Buffer.alloc(1024 * 3);
    tar.write("a.bin", 0);
    tar.write("0000000000 ", 124); // size 0
    tar.write("0000001\0", 148); // wrong checksum
    writeFileSync(corruptHeader, gzipSync(tar));
    await expect(extractTarGz(corruptHeader, new Map())).rejects.toThrow(/header checksum mismatch/);
  });
});

describe("downloads from a local HTTP server", () => {
  const served = new Map<string, Uint8Array>();
  let server: Server;
  let base = "";

  beforeAll(async () => {
    server = createServer((request, response) => {
      const body = served.get(request.url ?? "");
      if (body === undefined) {
        response.writeHead(404).end("not found");
      } else {
        response.writeHead(200, { "content-length": body.length }).end(body);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("writes the file atomically when the md5 matches", async () => {
    const bytes = pseudoRandomBytes(200_000, 21);
    served.set("/ok.bin", bytes);
    const dest = path.join(tempDir(), "sub", "ok.bin");
    expect(await downloadFile(`${base}/ok.bin`, dest, md5(bytes))).toEqual({ bytes: 200_000, md5: md5(bytes) });
    expect(md5(readFileSync(dest))).toBe(md5(bytes));
    expect(readdirSync(path.dirname(dest))).toEqual(["ok.bin"]);
  });

  it("leaves nothing behind on an md5 mismatch or an HTTP error", async () => {
    served.set("/wrong.bin", Buffer.from("tampered"));
    const dir = tempDir();
    await expect(downloadFile(`${base}/wrong.bin`, path.join(dir, "f.bin"), md5("genuine"))).rejects.toThrow(
      new RegExp(`has md5 ${md5("tampered")} \\(8 bytes\\), expected ${md5("genuine")}`),
    );
    await expect(downloadFile(`${base}/absent.bin`, path.join(dir, "f.bin"))).rejects.toThrow(/HTTP 404/);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const closedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/f.bin`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expect(downloadFile(closedUrl, path.join(dir, "f.bin"))).rejects.toThrow(
      new RegExp(`download of ${closedUrl} failed: fetch failed: .*ECONNREFUSED`),
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it("downloads the bad files of a per-file data set, falling back to the next mirror", async () => {
    const good = { "a.gz": Buffer.from("first file"), "b.gz": Buffer.from("second file") };
    for (const [name, body] of Object.entries(good)) served.set(`/mirror2/${name}`, body);
    const spec: DatasetSpec = {
      ...MNIST,
      files: Object.entries(good).map(([name, body]) => ({
        relativePath: `raw/${name}`,
        bytes: body.length,
        md5: md5(body),
      })),
      download: { kind: "files", baseUrls: [`${base}/mirror1/`, `${base}/mirror2/`] },
    };
    const dir = tempDir();
    mkdirSync(path.join(dir, "raw"));
    writeFileSync(path.join(dir, "raw", "a.gz"), good["a.gz"]); // already fine: kept
    const checks = await downloadDataset(spec, dir);
    expect(checks.every((c) => c.ok)).toBe(true);
    expect(readFileSync(path.join(dir, "raw", "b.gz"), "utf8")).toBe("second file");

    const unreachable: DatasetSpec = { ...spec, download: { kind: "files", baseUrls: [`${base}/mirror1/`] } };
    await expect(downloadDataset(unreachable, tempDir())).rejects.toThrow(
      /could not download a\.gz: download of .*mirror1\/a\.gz failed: HTTP 404/,
    );
  });

  const archiveTestName = `downloads an archive data set, extracts its members and deletes the archive${
    hasTar ? "" : " (SKIPPED: no tar command)"
  }`;
  it.skipIf(!hasTar)(archiveTestName, async () => {
    const members = { "batches/one.bin": pseudoRandomBytes(3000, 31), "batches/two.txt": "two" };
    const archive = readFileSync(makeTarGz({ ...members, "batches/readme.html": "extra" }, "gnu"));
    served.set("/archive.tar.gz", archive);
    const spec: DatasetSpec = {
      ...CIFAR10,
      files: Object.entries(members).map(([name, body]) => ({
        relativePath: name,
        bytes: Buffer.from(body).length,
        md5: md5(body),
      })),
      download: {
        kind: "archive",
        fileName: "archive.tar.gz",
        urls: [`${base}/archive.tar.gz`],
        bytes: archive.length,
        md5: md5(archive),
      },
    };
    const dir = tempDir();
    const checks = await downloadDataset(spec, dir);
    expect(checks.map((c) => c.ok)).toEqual([true, true]);
    expect(readdirSync(dir)).toEqual(["batches"]); // the archive is gone
    expect(readdirSync(path.join(dir, "batches")).sort()).toEqual(["one.bin", "two.txt"]);
    expect(existsSync(path.join(dir, "batches", "readme.html"))).toBe(false);

    const wrongMd5: DatasetSpec = {
      ...spec,
      download: { ...spec.download, md5: md5("other") } as DatasetSpec["download"],
    };
    await expect(downloadDataset(wrongMd5, tempDir())).rejects.toThrow(
      /could not download archive\.tar\.gz: .*has md5/,
    );
  });
});
