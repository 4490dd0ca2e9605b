/**
 * Training throughput of science/training.ts against the same network in a plain PyTorch CPU loop
 * (benchmarks/torch_reference.py), on synthetic MNIST-shaped (28x28x1) and CIFAR-shaped (32x32x3) data, batch 128,
 * 2 intra-op threads on both sides, for L = 1, 4, 16 blocks per section.
 *
 *   npx tsx benchmarks/training.ts [--quick] [--shapes mnist,cifar] [--blocks 1,4,16] [--repeats 3] [--steps 4]
 *                                  [--warmup 2] [--batch 128] [--torch-omp passive|active] [--no-torch]
 *                                  [--no-breakdown] [--threads 2] [--out training] [--results-dir DIR]
 *
 * 1. throughput: trainModel itself, timed between its step events (steady-state steps after `warmup`; model
 *    creation and the test evaluation excluded), interleaved with the PyTorch loop on the same shape and depth;
 *    the order alternates between repeats so load on the shared machine hits both. Ratio = ours / torch img/s.
 * 2. breakdown of the step rebuilt from its pieces (lib/ml-train-step.ts): per phase (batch, forward, backward,
 *    update) and per native op (lib/ml-op-census.ts, averaged over `steps` steps): how many ops a step runs, how long
 *    the activation-sized ones take, the parameter-sized ones, and JavaScript between them; PyTorch's own profiler
 *    gives its per-operator split for comparison. (The ops per step and JavaScript per op feed the GPU estimate.)
 * Writes benchmarks/results/<out>.json. `--quick`: MNIST shape, L = 1, 2 repeats of 3 steps, batch 32.
 */
import { availableParallelism, loadavg } from "node:os";
import { selectBackend } from "../science/backend/select.ts";
import { createResNet } from "../science/resnet.ts";
import { createTrainingModel, trainingEvents, type TrainOptions } from "../science/training.ts";
import {
  countOption,
  median,
  parseIntList,
  parseOptions,
  round,
  summarize,
  syntheticBytes,
  writeResults,
  type Summary,
} from "./lib/measure.ts";
import { opCensus, topOps } from "./lib/ml-op-census.ts";
import { TorchServer, torchUnavailable, type OmpWaitPolicy, type TorchOp } from "./lib/ml-torch.ts";
import { createStepper, type Stepper } from "./lib/ml-train-step.ts";

const SHAPES = {
  mnist: { shape: [28, 28, 1] as const, mean: [0.1307], std: [0.3081] },
  cifar: { shape: [32, 32, 3] as const, mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
};
type ShapeName = keyof typeof SHAPES;

const options = parseOptions(process.argv.slice(2), [
  "quick",
  "shapes",
  "blocks",
  "repeats",
  "steps",
  "warmup",
  "batch",
  "torch-omp",
  "no-torch",
  "no-breakdown",
  "out",
  "results-dir",
  "threads",
]);
const quick = options.has("quick");
const shapes = (options.get("shapes") ?? "mnist,cifar").split(",").map((s) => {
  if (!(s in SHAPES)) throw new Error(`unknown shape '${s}' (mnist, cifar)`);
  return s as ShapeName;
});
const settings = {
  quick,
  shapes: quick && !options.has("shapes") ? (["mnist"] as ShapeName[]) : shapes,
  blocks: parseIntList(options.get("blocks") ?? (quick ? "1" : "1,4,16")),
  repeats: countOption(options, "repeats") ?? (quick ? 2 : 3),
  steps: countOption(options, "steps") ?? (quick ? 3 : 4),
  warmup: countOption(options, "warmup", 0) ?? 2,
  batch: countOption(options, "batch") ?? (quick ? 32 : 128),
  torchOmp: (options.get("torch-omp") ?? "passive") as OmpWaitPolicy,
  /** Intra-op threads on both sides (TensorFlow and PyTorch); inter-op threads are 1 on both. */
  threads: countOption(options, "threads") ?? 2,
};
const THREADS = settings.threads;
const out = options.get("out") ?? "training";
const resultsDir = options.get("results-dir");

const backend = await selectBackend("tensorflow", { intraOpThreads: THREADS, interOpThreads: 1 });
const tf = backend.tf;

const torchReason = options.has("no-torch") ? "--no-torch" : torchUnavailable();
const torch =
  torchReason === undefined ? await TorchServer.start({ threads: THREADS, ompWait: settings.torchOmp }) : undefined;
if (torchReason !== undefined) console.log(`PyTorch skipped: ${torchReason}`);

const loadStart = loadavg();
const imagesPerSecond = (batch: number, stepMs: number) => (1000 * batch) / stepMs;

/** Median steady-state step time of trainModel: intervals between step events after `warmup` steps. */
async function trainModelStepMs(shapeName: ShapeName, blocks: number, seed: number): Promise<number[]> {
  const { shape, mean, std } = SHAPES[shapeName];
  const { batch, warmup, steps } = settings;
  const count = (warmup + steps + 1) * batch;
  const perImage = shape[0] * shape[1] * shape[2];
  const images = syntheticBytes(count * perImage, seed);
  const labels = syntheticBytes(count, seed + 1, 10);
  const stamps: number[] = [];
  const trainOptions: TrainOptions = {
    train: { images, labels, count },
    test: { images: images.subarray(0, perImage), labels: labels.subarray(0, 1), count: 1 },
    shape,
    mean,
    std,
    blocksPerSection: blocks,
    seed,
    epochs: 1,
    batchSize: batch,
    schedule: "cosine",
    augment: false,
  };
  const model = createTrainingModel(tf, trainOptions);
  try {
    for await (const event of trainingEvents(model, trainOptions)) {
      if (event.kind === "step") stamps.push(performance.now());
    }
  } finally {
    model.dispose();
  }
  return stamps
    .slice(1)
    .map((t, i) => t - stamps[i]!)
    .slice(warmup);
}

export interface ThroughputRow {
  shape: ShapeName;
  blocks: number;
  oursImgPerSec: Summary;
  torchImgPerSec?: Summary;
  /** Median over repeats of (ours / torch) within one repeat. */
  ratio?: Summary;
}

async function throughput(): Promise<ThroughputRow[]> {
  const rows: ThroughputRow[] = [];
  for (const shape of settings.shapes) {
    for (const blocks of settings.blocks) {
      const ours: number[] = [];
      const theirs: number[] = [];
      for (let rep = 0; rep < settings.repeats; rep++) {
        const runOurs = async () =>
          ours.push(imagesPerSecond(settings.batch, median(await trainModelStepMs(shape, blocks, rep))));
        const runTorch = async () => {
          if (torch === undefined) return;
          const reply = await torch.measure({
            shape: SHAPES[shape].shape,
            blocks,
            batch: settings.batch,
            warmup: settings.warmup,
            steps: settings.steps,
          });
          theirs.push(imagesPerSecond(settings.batch, median(reply.stepMs)));
        };
        if (rep % 2 === 0) {
          await runOurs();
          await runTorch();
        } else {
          await runTorch();
          await runOurs();
        }
      }
      const row: ThroughputRow = { shape, blocks, oursImgPerSec: summarize(ours) };
      if (theirs.length > 0) {
        row.torchImgPerSec = summarize(theirs);
        row.ratio = summarize(ours.map((o, i) => o / theirs[i]!));
      }
      rows.push(row);
      console.log(
        `throughput ${shape} L=${blocks}: ours ${round(row.oursImgPerSec.median)} img/s` +
          (row.ratio
            ? `, torch ${round(row.torchImgPerSec!.median)} img/s, ours/torch ${round(row.ratio.median)} (${round(row.ratio.min)}..${round(row.ratio.max)})`
            : ""),
      );
    }
  }
  return rows;
}

interface Setup {
  readonly stepper: Stepper;
  readonly indices: Int32Array;
  readonly dispose: () => void;
}

/** A model and its stepper on one batch of synthetic data. */
function setupStepper(shapeName: ShapeName, blocks: number): Setup {
  const { shape, mean, std } = SHAPES[shapeName];
  const count = settings.batch;
  const images = tf.tensor4d(syntheticBytes(count * shape[0] * shape[1] * shape[2], 7), [count, ...shape], "int32");
  const labels = tf.tensor1d(syntheticBytes(count, 8, 10), "int32");
  const model = createResNet(tf, { inputShape: shape, blocksPerSection: blocks, classes: 10, seed: 0 });
  const data = { images, labels, mean, std, classes: 10 };
  const stepper = createStepper(tf, model, data, { momentum: 0.9, weightDecay: 5e-4 });
  return {
    stepper,
    indices: Int32Array.from({ length: count }, (_, i) => i),
    dispose: () => {
      stepper.dispose();
      model.dispose();
      images.dispose();
      labels.dispose();
    },
  };
}

const timeStep = (stepper: Stepper, indices: Int32Array): number => {
  const t0 = performance.now();
  const { lossSum, errors } = stepper.step(indices, 0.01);
  const ms = performance.now() - t0; // native ops run synchronously: the step is done when step() returns
  lossSum.dispose();
  errors.dispose();
  return ms;
};

export interface BreakdownRow {
  shape: ShapeName;
  blocks: number;
  /** Median ms of each phase run alone; backward = gradients - forward, update = step - gradients - batch. */
  phasesMs: { batch: number; forward: number; backward: number; update: number; step: number };
  census: {
    wallMs: number;
    opsPerStep: number;
    largeOps: { calls: number; ms: number };
    smallOps: { calls: number; ms: number };
    javascriptMs: number;
    /** Every native op name, calls and ms per step, most expensive first. */
    ops: Array<{ name: string; calls: number; ms: number }>;
  };
}

/** Each phase alone, interleaved round by round so load hits all phases alike; medians in ms. */
function phases(stepper: Stepper, indices: Int32Array): BreakdownRow["phasesMs"] {
  const time = (f: () => void): number => {
    const t0 = performance.now();
    tf.tidy(f);
    return performance.now() - t0;
  };
  const samples = { batch: [] as number[], forward: [] as number[], gradients: [] as number[], step: [] as number[] };
  const { x, labels } = stepper.batch(indices);
  for (let i = 0; i < Math.max(5, settings.steps); i++) {
    samples.batch.push(time(() => void stepper.batch(indices)));
    samples.forward.push(time(() => void stepper.forward(x)));
    samples.gradients.push(time(() => void stepper.gradients(x, labels).errors.dispose()));
    samples.step.push(timeStep(stepper, indices));
  }
  x.dispose();
  labels.dispose();
  const [batch, forward, gradients, step] = [samples.batch, samples.forward, samples.gradients, samples.step].map(
    median,
  ) as [number, number, number, number];
  return { batch, forward, backward: gradients - forward, update: step - gradients - batch, step };
}

/** Median microseconds of one tiny native op (an add of two 16-element tensors, inside a tidy): the dispatch floor. */
function dispatchMicroseconds(): number {
  const a = tf.ones([16]);
  const samples = Array.from({ length: 7 }, () => {
    const t0 = performance.now();
    for (let i = 0; i < 500; i++) tf.tidy(() => tf.add(a, a));
    return ((performance.now() - t0) * 1000) / 500;
  });
  a.dispose();
  return median(samples);
}

interface TorchBreakdownRow {
  shape: ShapeName;
  blocks: number;
  stepMs: number;
  ops: TorchOp[];
}

interface Breakdown {
  /** One tiny native op's cost, the dispatch floor. */
  dispatchMicroseconds: number;
  ours: BreakdownRow[];
  torch: TorchBreakdownRow[];
}

async function breakdown(): Promise<Breakdown> {
  const dispatch = dispatchMicroseconds();
  console.log(`breakdown: one tiny native op (16-element add in a tidy) costs ${round(dispatch)} us`);
  const ours: BreakdownRow[] = [];
  const torchRows: TorchBreakdownRow[] = [];
  const { steps } = settings;
  const perStep = (o: { calls: number; ms: number }) => ({ calls: o.calls / steps, ms: o.ms / steps });
  for (const shape of settings.shapes) {
    for (const blocks of settings.blocks) {
      const { stepper, indices, dispose } = setupStepper(shape, blocks);
      for (let i = 0; i < settings.warmup; i++) timeStep(stepper, indices);
      const p = phases(stepper, indices);
      const census = opCensus(tf, () => {
        for (let i = 0; i < steps; i++) timeStep(stepper, indices);
      });
      dispose();
      const row: BreakdownRow = {
        shape,
        blocks,
        phasesMs: p,
        census: {
          wallMs: census.wallMs / steps,
          opsPerStep: (census.largeOps.calls + census.smallOps.calls) / steps,
          largeOps: perStep(census.largeOps),
          smallOps: perStep(census.smallOps),
          javascriptMs: census.javascriptMs / steps,
          ops: topOps(census, Infinity).map((o) => ({ name: o.name, ...perStep(o) })),
        },
      };
      ours.push(row);
      const c = row.census;
      console.log(
        `breakdown ${shape} L=${blocks}: step ${round(p.step)} ms = batch ${round(p.batch)} + forward ${round(p.forward)} ` +
          `+ backward ${round(p.backward)} + update ${round(p.update)}; ${c.opsPerStep} native ops: ` +
          `${c.largeOps.calls} activation-sized ${round(c.largeOps.ms)} ms, ${c.smallOps.calls} small ${round(c.smallOps.ms)} ms, ` +
          `JavaScript ${round(c.javascriptMs)} ms (census step ${round(c.wallMs)} ms)`,
      );
      console.log(
        `  top ops: ${c.ops
          .slice(0, 12)
          .map((o) => `${o.name} ${o.calls}x ${round(o.ms)} ms`)
          .join(", ")}`,
      );
      if (torch !== undefined) {
        const request = { shape: SHAPES[shape].shape, blocks, batch: settings.batch, warmup: settings.warmup, steps };
        const ops = (await torch.measure({ ...request, profile: true })).ops ?? [];
        const stepMs = median((await torch.measure(request)).stepMs);
        torchRows.push({ shape, blocks, stepMs, ops });
        const top = ops.slice(0, 10).map((o) => `${o.name} ${round(o.selfMs)}`);
        console.log(
          `  torch ${shape} L=${blocks}: step ${round(stepMs)} ms; top ops (self ms/step): ${top.join(", ")}`,
        );
      }
    }
  }
  return { dispatchMicroseconds: dispatch, ours, torch: torchRows };
}

/** What benchmarks/results/training.json holds (bench.ts summarises it). */
export interface TrainingResult {
  readonly benchmark: "training";
  readonly settings: typeof settings;
  readonly machine: { readonly cpus: number; readonly loadavgStart: number[]; readonly loadavgEnd: number[] };
  readonly backend: Record<string, unknown>;
  readonly torch: Record<string, unknown>;
  readonly throughput: ThroughputRow[];
  readonly breakdown?: Breakdown;
}

try {
  const throughputRows = await throughput();
  const breakdownResult = options.has("no-breakdown") ? undefined : await breakdown();
  const { name, tfVersion, tfjsVersion, threads, env } = backend;
  const results: TrainingResult = {
    benchmark: "training",
    settings,
    machine: { cpus: availableParallelism(), loadavgStart: loadStart, loadavgEnd: loadavg() },
    backend: { name, tfVersion, tfjsVersion, threads, env },
    torch:
      torch === undefined
        ? { skipped: torchReason }
        : { threads: THREADS, interOpThreads: 1, ompWaitPolicy: settings.torchOmp },
    throughput: throughputRows,
    ...(breakdownResult === undefined ? {} : { breakdown: breakdownResult }),
  };
  console.log(`wrote ${writeResults(out, results, resultsDir)}`);
} finally {
  await torch?.close();
}
