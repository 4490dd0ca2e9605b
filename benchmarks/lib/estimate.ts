/**
 * What the paper's full sweep costs: CPU-hours on this machine from measured training throughput, and the GPU path's
 * expected cost from a stated model (no GPU run of the TensorFlow.js stack is possible on the lent machines).
 *
 * The sweep is preset "paper": both data sets, 38 depths, MNIST 20 epochs and CIFAR-10 160 on the full training sets,
 * the paper's batch sizes, then a probe of 10,000 test images per run. Any other preset is estimated the same way.
 */
import { loadConfig } from "../../pipeline/config.ts";
import { DATASETS } from "../../science/data/datasets.ts";
import { sectionShapes } from "../../science/resnet.ts";
import { secondsPerImageByDataset, type SecondsPerImage, type ThroughputPoint } from "../../science/throughput.ts";
import { runsOf, trainImagesOf, trainParamsFor, type DatasetName } from "../../stages/config.ts";
import { paperPipeline } from "../../stages/index.ts";

export interface SweepRun {
  readonly dataset: DatasetName;
  readonly L: number;
  readonly epochs: number;
  readonly trainImages: number;
  readonly testImages: number;
  readonly batchSize: number;
}

/** Every training run of a preset (of the default configuration without one), as the pipeline would run it. */
export const presetRuns = (preset?: string): SweepRun[] => {
  const { config } = loadConfig(paperPipeline, preset === undefined ? {} : { preset });
  return config.datasets.flatMap((dataset) =>
    runsOf(config, dataset).map(({ L, seed }) => {
      const p = trainParamsFor(config, dataset, L, seed);
      const testImages = config[dataset].probeImages;
      return { dataset, L, epochs: p.epochs, trainImages: trainImagesOf(p), testImages, batchSize: p.batchSize };
    }),
  );
};

export interface CpuSweepEstimate {
  /** Seconds per training image = intercept + slope * L, fitted per data set to the measured points. */
  readonly secondsPerImage: Readonly<Record<string, SecondsPerImage>>;
  readonly runs: ReadonlyArray<SweepRun & { readonly secondsPerEpoch: number; readonly hours: number }>;
  readonly hoursByDataset: Readonly<Record<string, number>>;
  readonly totalHours: number;
  readonly longestRun: { readonly dataset: string; readonly L: number; readonly hours: number };
}

/**
 * CPU-hours of the sweep: each run's epochs x training images x seconds per image at its L (a line in L fitted to the
 * measured points: the work is a fixed part plus 3 blocks per L), plus the probe, counted as one training image's
 * cost per test image (a forward pass is about a third of a training step, so this over-counts a little).
 * Assumes the measured batch size's throughput holds for the paper's (64 to 256), and one job at a time on all cores.
 */
export function estimateCpuSweep(
  points: ReadonlyArray<ThroughputPoint>,
  runs: ReadonlyArray<SweepRun> = presetRuns("paper"),
): CpuSweepEstimate {
  const fits = secondsPerImageByDataset(points);
  const secondsPerImage: Record<string, SecondsPerImage> = {};
  for (const dataset of new Set(runs.map((r) => r.dataset))) {
    const fit = fits[dataset];
    if (fit === undefined) throw new RangeError(`estimateCpuSweep: need two or more measured depths for ${dataset}`);
    secondsPerImage[dataset] = fit;
  }
  const estimated = runs.map((run) => {
    const fit = secondsPerImage[run.dataset]!;
    const perImage = fit.intercept + fit.slope * run.L;
    const secondsPerEpoch = run.trainImages * perImage;
    return { ...run, secondsPerEpoch, hours: (run.epochs * secondsPerEpoch + run.testImages * perImage) / 3600 };
  });
  const hoursByDataset: Record<string, number> = {};
  for (const r of estimated) hoursByDataset[r.dataset] = (hoursByDataset[r.dataset] ?? 0) + r.hours;
  const longest = estimated.reduce((a, b) => (b.hours > a.hours ? b : a));
  return {
    secondsPerImage,
    runs: estimated,
    hoursByDataset,
    totalHours: estimated.reduce((a, r) => a + r.hours, 0),
    longestRun: { dataset: longest.dataset, L: longest.L, hours: longest.hours },
  };
}

/**
 * Multiply-adds of one image's forward pass through the convolutions and the dense layer (BN, ReLU and adds are
 * memory-bound and left to the per-op term of the GPU model).
 */
export function forwardMacsPerImage(dataset: DatasetName, L: number): number {
  const inputShape = DATASETS[dataset].imageShape;
  const inputChannels = inputShape[2];
  const sections = sectionShapes(inputShape);
  const [h1, w1, c1] = sections[0]!;
  let macs = 9 * inputChannels * c1 * h1 * w1; // stem 3x3
  sections.forEach(([h, w, c], s) => {
    if (s > 0) macs += sections[s - 1]![2] * c * h * w; // transition 1x1, stride 2
    macs += L * 2 * 9 * c * c * h * w; // L blocks of two 3x3 convs
  });
  return macs + sections[2]![2] * 10; // dense
}

/** Assumptions of the GPU model, stated with their values in the output. */
export interface GpuAssumptions {
  /** Sustained float32 throughput on these small convolutions (FLOP/s). */
  readonly sustainedFlops: number;
  /** Host-side cost per dispatched op (JS + tfjs-node binding + kernel launch), seconds. */
  readonly secondsPerOp: number;
  /** Native ops per training step = intercept + slope * L (counted by the training benchmark's op census). */
  readonly opsPerStep: { readonly intercept: number; readonly slope: number };
}

export interface GpuSweepEstimate {
  readonly assumptions: GpuAssumptions;
  readonly computeHours: number;
  readonly dispatchHours: number;
  /** Each run bounded by the larger of its compute and its dispatch time (they overlap when the GPU queue is full). */
  readonly totalHours: number;
  readonly hoursByDataset: Readonly<Record<string, number>>;
}

/** GPU cost: training FLOPs = 3 x forward (forward + two backward products), steps = ceil(images / batch) per epoch. */
export function estimateGpuSweep(
  assumptions: GpuAssumptions,
  runs: ReadonlyArray<SweepRun> = presetRuns("paper"),
): GpuSweepEstimate {
  let computeHours = 0;
  let dispatchHours = 0;
  let totalHours = 0;
  const hoursByDataset: Record<string, number> = {};
  for (const run of runs) {
    const flops = 2 * forwardMacsPerImage(run.dataset, run.L) * (3 * run.epochs * run.trainImages + run.testImages);
    const compute = flops / assumptions.sustainedFlops / 3600;
    const steps = run.epochs * Math.ceil(run.trainImages / run.batchSize);
    const ops = assumptions.opsPerStep.intercept + assumptions.opsPerStep.slope * run.L;
    const dispatch = (steps * ops * assumptions.secondsPerOp) / 3600;
    computeHours += compute;
    dispatchHours += dispatch;
    totalHours += Math.max(compute, dispatch);
    hoursByDataset[run.dataset] = (hoursByDataset[run.dataset] ?? 0) + Math.max(compute, dispatch);
  }
  return { assumptions, computeHours, dispatchHours, totalHours, hoursByDataset };
}

/**
 * Wall time of a sweep on `gpus` GPUs, each run one job on one GPU (the Slurm executor, docs/cluster.md): the runs'
 * GPU-model hours scheduled longest first, each on the GPU that frees first. No shorter than the longest run.
 */
export function gpuSweepWallHours(
  assumptions: GpuAssumptions,
  gpus: number,
  runs: ReadonlyArray<SweepRun> = presetRuns("paper"),
): { readonly wallHours: number; readonly longestRunHours: number } {
  const hours = runs.map((run) => estimateGpuSweep(assumptions, [run]).totalHours).sort((a, b) => b - a);
  const busy: number[] = new Array<number>(Math.max(1, gpus)).fill(0);
  for (const h of hours) busy[busy.indexOf(Math.min(...busy))]! += h;
  return { wallHours: Math.max(...busy), longestRunHours: hours[0] ?? 0 };
}
