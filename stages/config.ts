/** The paper pipeline's configuration: which data sets, depths and seeds, and the training recipe per data set. */
import { Schema } from "effect";
import { DATASETS } from "../science/data/datasets.ts";

export const DatasetName = Schema.Literal("mnist", "cifar10");
export type DatasetName = typeof DatasetName.Type;

const PositiveInt = Schema.Int.pipe(Schema.positive());
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative());
const Depth = Schema.Int.pipe(
  Schema.between(1, 100, { message: () => "blocks per section must be an integer from 1 to 100" }),
);

/** The recipe for one data set. "paper" picks the paper's batch sizes and augmentation. */
export const DatasetConfig = Schema.Struct({
  /** Blocks per residual section, one trained network per value. */
  depths: Schema.Array(Depth).pipe(Schema.minItems(1)),
  epochs: PositiveInt,
  /** Train on the first N training images (0 = all). */
  trainSubset: NonNegativeInt,
  batchSize: Schema.Union(Schema.Literal("paper"), PositiveInt),
  augment: Schema.Union(Schema.Literal("paper"), Schema.Boolean),
  learningRate: Schema.Number.pipe(Schema.positive()),
  momentum: Schema.Number.pipe(Schema.between(0, 1)),
  weightDecay: Schema.Number.pipe(Schema.nonNegative()),
  schedule: Schema.Literal("cosine", "step"),
  /** Test images the probe averages over (the paper: all 10,000). */
  probeImages: Schema.Int.pipe(Schema.between(1, 10_000)),
});
export type DatasetConfig = typeof DatasetConfig.Type;

export const PaperConfig = Schema.Struct({
  datasets: Schema.Array(DatasetName).pipe(Schema.minItems(1)),
  seeds: Schema.Array(NonNegativeInt).pipe(Schema.minItems(1)),
  mnist: DatasetConfig,
  cifar10: DatasetConfig,
  analysis: Schema.Struct({
    /** The stopping rule's target mean scaled perturbation. */
    eps: Schema.Number.pipe(Schema.positive()),
    /** Relative tolerance within which the absolute distance counts as saturated. */
    saturationTolerance: Schema.Number.pipe(Schema.positive()),
  }),
});
export type PaperConfig = typeof PaperConfig.Type;

/** L = 2, 4, ..., 70, then 80, 90, 100: 38 depths. */
export const PAPER_DEPTHS: ReadonlyArray<number> = [...Array.from({ length: 35 }, (_, i) => 2 * (i + 1)), 80, 90, 100];

const recipe = {
  batchSize: "paper",
  augment: "paper",
  learningRate: 0.1,
  momentum: 0.9,
  schedule: "cosine",
  trainSubset: 0,
  probeImages: 10_000,
} as const;

/** Encoded defaults: a moderate CPU-sized run on both data sets. */
export const DEFAULT_CONFIG = {
  datasets: ["mnist", "cifar10"],
  seeds: [0],
  mnist: { ...recipe, depths: [1, 2, 4, 8, 16], epochs: 2, weightDecay: 1e-4 },
  cifar10: { ...recipe, depths: [1, 2, 4, 8, 16], epochs: 10, weightDecay: 5e-4 },
  analysis: { eps: 0.1, saturationTolerance: 0.1 },
};

export const PRESETS = {
  /**
   * Minutes on 2 CPU cores with the native backend: MNIST, 10,000 training images, L in {1, 2, 4, 8}, one epoch.
   * Batch 64 rather than the paper's 128: one epoch of 10,000 images needs the extra steps to get under 10% error.
   */
  smoke: {
    datasets: ["mnist"],
    mnist: { depths: [1, 2, 4, 8], epochs: 1, trainSubset: 10_000, batchSize: 64, probeImages: 10_000 },
  },
  /**
   * The strongest result one 2-core CPU machine gives in about 2.5 hours (docs/reports/mnist-cpu): all 60,000 MNIST
   * training images at the paper's batch size (128), 3 epochs of cosine decay, L = 1, 2, 4, ..., 32 (log-spaced),
   * probed over all 10,000 test images. The estimator (benchmarks/lib/estimate.ts,
   * `npm run estimate -- --preset mnist-cpu`) puts it at about 2.5 h: the epochs are the least that converge, the
   * depths the most that then fit.
   */
  "mnist-cpu": {
    datasets: ["mnist"],
    mnist: { depths: [1, 2, 4, 8, 16, 32], epochs: 3, trainSubset: 0, batchSize: 128, probeImages: 10_000 },
  },
  /** The paper's sweep: the 38 depths of PAPER_DEPTHS on both data sets, full schedule. A GPU job. */
  paper: {
    datasets: ["mnist", "cifar10"],
    mnist: { depths: PAPER_DEPTHS, epochs: 20, trainSubset: 0, schedule: "step" },
    cifar10: { depths: PAPER_DEPTHS, epochs: 160, trainSubset: 0, schedule: "step" },
  },
} as const;

/** The paper's batch size: CIFAR-10 256 for L<=28, 128 for L<=58, 64 above; MNIST 128 for L<=60, 64 above. */
const paperBatchSize = (dataset: DatasetName, L: number): number =>
  dataset === "cifar10" ? (L <= 28 ? 256 : L <= 58 ? 128 : 64) : L <= 60 ? 128 : 64;

/** The paper augments CIFAR-10 (4-pixel pad, random 32x32 crop, horizontal flip) and not MNIST. */
export const paperAugment = (dataset: DatasetName): boolean => dataset === "cifar10";

/** Parameters of one training node, resolved from the configuration (so they hash what actually runs). */
export const TrainParams = Schema.Struct({
  dataset: DatasetName,
  L: Schema.Int.pipe(Schema.between(1, 100)),
  seed: Schema.Int.pipe(Schema.nonNegative()),
  epochs: Schema.Int.pipe(Schema.positive()),
  trainSubset: Schema.Int.pipe(Schema.nonNegative()),
  batchSize: Schema.Int.pipe(Schema.positive()),
  augment: Schema.Boolean,
  learningRate: Schema.Number.pipe(Schema.positive()),
  momentum: Schema.Number,
  weightDecay: Schema.Number.pipe(Schema.nonNegative()),
  schedule: Schema.Literal("cosine", "step"),
});
export type TrainParams = typeof TrainParams.Type;

export const trainParamsFor = (config: PaperConfig, dataset: DatasetName, L: number, seed: number): TrainParams => {
  const d = config[dataset];
  return {
    dataset,
    L,
    seed,
    epochs: d.epochs,
    trainSubset: d.trainSubset,
    batchSize: d.batchSize === "paper" ? paperBatchSize(dataset, L) : d.batchSize,
    augment: d.augment === "paper" ? paperAugment(dataset) : d.augment,
    learningRate: d.learningRate,
    momentum: d.momentum,
    weightDecay: d.weightDecay,
    schedule: d.schedule,
  };
};

/** How many training images a run sees per epoch: its subset, or the whole training split. */
export const trainImagesOf = (p: TrainParams): number =>
  p.trainSubset > 0 ? p.trainSubset : DATASETS[p.dataset].splitSizes.train;

/** Every (depth, seed) run configured for a data set, in order. */
export const runsOf = (config: PaperConfig, dataset: DatasetName) =>
  config[dataset].depths.flatMap((L) => config.seeds.map((seed) => ({ L, seed })));
