/**
 * Decoding of the IDX format used by the original MNIST distribution files.
 *
 * An IDX file is a big-endian header (a 4-byte magic number whose low bytes give the element type and the
 * number of dimensions, then one uint32 per dimension) followed by the raw elements. MNIST uses two kinds:
 * images (magic 0x00000803: uint8, 3 dims count x rows x cols) and labels (magic 0x00000801: uint8, 1 dim).
 * The distribution files are gzip-compressed; the decoders accept gzipped or raw bytes.
 */
import { gunzipSync } from "node:zlib";

/** Magic number of an IDX file of uint8 elements with 3 dimensions (MNIST images). */
export const IDX_IMAGES_MAGIC = 0x00000803;
/** Magic number of an IDX file of uint8 elements with 1 dimension (MNIST labels). */
export const IDX_LABELS_MAGIC = 0x00000801;

/** Images stored row-major, one byte per pixel: pixel (i, r, c) is `pixels[(i * rows + r) * cols + c]`. */
export interface IdxImages {
  readonly count: number;
  readonly rows: number;
  readonly cols: number;
  readonly pixels: Uint8Array;
}

export interface IdxLabels {
  readonly count: number;
  readonly labels: Uint8Array;
}

/** True when the bytes start with the gzip magic 1f 8b (an IDX file starts with 00 00, so there is no ambiguity). */
export const isGzip = (bytes: Uint8Array): boolean => bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;

/** Returns the decompressed bytes of gzip input, or the input itself when it is not gzipped. */
export const gunzipIfGzipped = (bytes: Uint8Array): Uint8Array => {
  if (!isGzip(bytes)) return bytes;
  try {
    return gunzipSync(bytes);
  } catch (error) {
    throw new Error(`IDX: gzip decompression failed (truncated or corrupt file?): ${(error as Error).message}`, {
      cause: error,
    });
  }
};

/** Reads and checks the header: magic number, then `dims` big-endian uint32 sizes; returns the sizes. */
const readHeader = (bytes: Uint8Array, expectedMagic: number, kind: string): number[] => {
  const dimCount = expectedMagic & 0xff;
  const headerBytes = 4 + 4 * dimCount;
  const tooShort = () =>
    new Error(`IDX ${kind}: file is ${bytes.length} bytes, shorter than its ${headerBytes}-byte header`);
  if (bytes.length < 4) throw tooShort();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (magic !== expectedMagic) {
    throw new Error(
      `IDX ${kind}: magic number 0x${magic.toString(16).padStart(8, "0")}, expected ` +
        `0x${expectedMagic.toString(16).padStart(8, "0")} (wrong file or not an IDX file)`,
    );
  }
  if (bytes.length < headerBytes) throw tooShort();
  const dims = Array.from({ length: dimCount }, (_, i) => view.getUint32(4 + 4 * i, false));
  const elementBytes = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== headerBytes + elementBytes) {
    throw new Error(
      `IDX ${kind}: dimensions ${dims.join("x")} need ${headerBytes + elementBytes} bytes, file has ${bytes.length}`,
    );
  }
  return dims;
};

/**
 * Decodes an IDX images file (gzipped or raw). The pixels are a plain Uint8Array copy (not a Node Buffer view, whose
 * `slice` would alias), independent of the input buffer.
 */
export const decodeIdxImages = (fileBytes: Uint8Array): IdxImages => {
  const bytes = gunzipIfGzipped(fileBytes);
  const [count = 0, rows = 0, cols = 0] = readHeader(bytes, IDX_IMAGES_MAGIC, "images");
  return { count, rows, cols, pixels: new Uint8Array(bytes.subarray(16)) };
};

/** Decodes an IDX labels file (gzipped or raw). The labels are a copy, independent of the input buffer. */
export const decodeIdxLabels = (fileBytes: Uint8Array): IdxLabels => {
  const bytes = gunzipIfGzipped(fileBytes);
  const [count = 0] = readHeader(bytes, IDX_LABELS_MAGIC, "labels");
  return { count, labels: new Uint8Array(bytes.subarray(8)) };
};
