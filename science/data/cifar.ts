/**
 * Decoding of the CIFAR-10 "binary version" batch files.
 *
 * A batch file is a plain sequence of 3073-byte records: 1 label byte (0..9), then the 1024 red, 1024 green and
 * 1024 blue bytes of a 32x32 image, each plane row-major (channel-first, CHW).
 *
 * Stored layout (both data sets): pixels are HWC interleaved uint8, i.e. pixel (i, y, x, c) is
 * `pixels[((i * H + y) * W + x) * C + c]`, so MNIST is [28, 28, 1] and CIFAR-10 is [32, 32, 3]. The decoder
 * therefore converts each record's CHW planes to HWC.
 */

export const CIFAR_SIDE = 32;
export const CIFAR_CHANNELS = 3;
export const CIFAR_CLASS_COUNT = 10;
/** Bytes of one image plane (one channel). */
export const CIFAR_PLANE_BYTES = CIFAR_SIDE * CIFAR_SIDE;
/** Bytes of one image (all three planes). */
export const CIFAR_IMAGE_BYTES = CIFAR_PLANE_BYTES * CIFAR_CHANNELS;
/** Bytes of one record: the label byte then the image. */
export const CIFAR_RECORD_BYTES = 1 + CIFAR_IMAGE_BYTES;

/** Decoded records: `pixels` is HWC interleaved (count x 32 x 32 x 3), `labels` one byte per image. */
export interface CifarBatch {
  readonly count: number;
  readonly pixels: Uint8Array;
  readonly labels: Uint8Array;
}

/** Decodes a whole batch file (any number of records); rejects a partial record or a label outside 0..9. */
export const decodeCifarBatch = (bytes: Uint8Array): CifarBatch => {
  if (bytes.length % CIFAR_RECORD_BYTES !== 0) {
    throw new Error(
      `CIFAR-10: ${bytes.length} bytes is not a whole number of ${CIFAR_RECORD_BYTES}-byte records ` +
        `(truncated or wrong file)`,
    );
  }
  const count = bytes.length / CIFAR_RECORD_BYTES;
  const pixels = new Uint8Array(count * CIFAR_IMAGE_BYTES);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const record = i * CIFAR_RECORD_BYTES;
    const label = bytes[record]!;
    if (label >= CIFAR_CLASS_COUNT) {
      throw new Error(`CIFAR-10: record ${i} has label ${label}, expected 0..${CIFAR_CLASS_COUNT - 1} (wrong file?)`);
    }
    labels[i] = label;
    const red = record + 1;
    const green = red + CIFAR_PLANE_BYTES;
    const blue = green + CIFAR_PLANE_BYTES;
    // Position p (= y * 32 + x) of each plane becomes pixel p of the HWC image: bytes out + 3p, 3p+1, 3p+2.
    // (Indices are in range: the length check above guarantees whole records; `!` avoids a per-byte branch.)
    let out = i * CIFAR_IMAGE_BYTES;
    for (let p = 0; p < CIFAR_PLANE_BYTES; p++, out += CIFAR_CHANNELS) {
      pixels[out] = bytes[red + p]!;
      pixels[out + 1] = bytes[green + p]!;
      pixels[out + 2] = bytes[blue + p]!;
    }
  }
  return { count, pixels, labels };
};

/** Concatenates decoded batches in order (the five training batches form the training split). */
export const concatCifarBatches = (batches: ReadonlyArray<CifarBatch>): CifarBatch => {
  const count = batches.reduce((n, b) => n + b.count, 0);
  const pixels = new Uint8Array(count * CIFAR_IMAGE_BYTES);
  const labels = new Uint8Array(count);
  let offset = 0;
  for (const batch of batches) {
    pixels.set(batch.pixels, offset * CIFAR_IMAGE_BYTES);
    labels.set(batch.labels, offset);
    offset += batch.count;
  }
  return { count, pixels, labels };
};

/** Parses batches.meta.txt: one class name per line, in label order (trailing blank lines ignored). */
export const parseCifarClassNames = (text: string): string[] => {
  const names = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  if (names.length !== CIFAR_CLASS_COUNT) {
    throw new Error(`CIFAR-10: batches.meta.txt lists ${names.length} class names, expected ${CIFAR_CLASS_COUNT}`);
  }
  return names;
};
