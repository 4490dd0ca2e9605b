/**
 * The two data sets (MNIST, CIFAR-10) as specifications: their standard distribution files with published sizes and
 * md5s, where to fetch them, image shape, classes and published statistics. Checking the files: verify.ts; fetching
 * them: download.ts; decoding a split: load.ts.
 *
 * Files live under a data directory in the standard layouts: `MNIST/raw/*.gz` (the four original IDX files, as
 * torchvision stores them) and `cifar-10-batches-bin/*` (the content of the official binary archive). The sizes and
 * md5s below are the published ones; they were checked against the genuine files in /work/shared/datasets.
 */
import path from "node:path";

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
