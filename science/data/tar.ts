/** A minimal streaming reader of .tar.gz archives that extracts selected members (the CIFAR-10 download). */
import { createReadStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { pipeline as pipelineStreams } from "node:stream";
import { createGunzip } from "node:zlib";
import { writeFileAtomic } from "../../cache/fsutil.ts";

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
 * atomically (temp + fsync + rename). A minimal reader of POSIX ustar / pax and GNU tar: header checksums are
 * verified, long names are taken from the ustar prefix field, a pax `path` record or a GNU long-name entry; links,
 * directories and other entry types are skipped. Returns the member names extracted.
 */
export const extractTarGz = async (archivePath: string, members: ReadonlyMap<string, string>): Promise<string[]> => {
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
        await writeFileAtomic(dest, body.subarray(0, size));
        extracted.push(name);
      }
    }
  } finally {
    stream.destroy();
  }
  return extracted;
};
