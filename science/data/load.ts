/** Decodes a split of a data set from its distribution files into HWC uint8 pixels and labels. */
import { readFile } from "node:fs/promises";
import { concatCifarBatches, decodeCifarBatch, parseCifarClassNames } from "./cifar.ts";
import { CIFAR_FILES, filePath, type DatasetFile, type DatasetSpec, type Split } from "./datasets.ts";
import { decodeIdxImages, decodeIdxLabels } from "./idx.ts";

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
