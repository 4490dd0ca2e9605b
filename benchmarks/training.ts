/**
 * Training throughput of science/training.ts against the same network in a plain PyTorch CPU loop
 * (benchmarks/torch_reference.py), on synthetic MNIST-shaped (28x28x1) and CIFAR-shaped (32x32x3) data, batch 128,
 * 2 intra-op threads on both sides, for L = 1, 4, 16 blocks per section.
 *
 *   npx tsx benchmarks/training.ts [--quick] [--shapes mnist,cifar] [--blocks 1,4,16] [--repeats 3] [--steps 4]
 *                                  [--warmup 2] [--batch 128] [--torch-omp passive|active] [--no-torch]
 *                                  [--no-variants] [--no-breakdown] [--threads 2] [--out training] [--results-dir DIR]
 *
 * 1. throughput: trainModel itself, timed between its step events (steady-state steps after `warmup`; model
 *    creation and the test evaluation excluded), interleaved with the PyTorch loop on the same shape and depth;
 *    the order alternates between repeats so load on the shared machine hits both. Ratio = ours / torch img/s.
 * 2. variants: the step rebuilt from its pieces (lib/ml-train-step.ts) as it is now, with the prototyped grouped SGD
 *    update, and with the hand-written BatchNorm/ReLU gradients that the fused kernels replaced (a baseline),
 *    interleaved with each other and with the PyTorch loop; ratios per repeat against the current step and PyTorch.
 * 3. breakdown, for each variant: per phase (batch, forward, backward, update) and per native op (lib/ml-op-census.ts, averaged
 *    over `steps` steps): how many ops a step runs, how long the activation-sized ones take, the parameter-sized ones, and JavaScript between them;
 *    PyTorch's own profiler gives its per-operator split for comparison.
 * Writes benchmarks/results/<out>.json. `--quick`: MNIST shape, L = 1, 2 repeats of 3 steps, batch 32.
 */
import { availableParallelism, loadavg } from "node:os";
import type * as tfjs from "@tensorflow/tfjs";
import { selectBackend } from "../science/backend/select.ts";
import { createResNet, type TF } from "../science/resnet.ts";
import { createTrainingModel, trainingEvents, type TrainOptions } from "../science/training.ts";
import { median, parseIntList, parseOptions, round, summarize, syntheticBytes, writeResults, type Summary } from "./lib/ml-measure.ts";
import { opCensus, topOps } from "./lib/ml-op-census.ts";
import { TorchServer, torchUnavailable, type OmpWaitPolicy, type TorchOp } from "./lib/ml-torch.ts";
import { createStepper, VARIANTS, type Stepper } from "./lib/ml-train-step.ts";

const SHAPES = {
  mnist: { shape: [28, 28, 1] as const, mean: [0.1307], std: [0.3081] },
  cifar: { shape: [32, 32, 3] as const, mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
};
type ShapeName = keyof typeof SHAPES;

const options = parseOptions(process.argv.slice(2), [
  "quick", "shapes", "blocks", "repeats", "steps", "warmup", "batch", "torch-omp", "no-torch", "no-variants", "no-breakdown", "out", "results-dir", "threads",
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
  repeats: Number(options.get("repeats") ?? (quick ? 2 : 3)),
  steps: Number(options.get("steps") ?? (quick ? 3 : 4)),
  warmup: Number(options.get("warmup") ?? 2),
  batch: Number(options.get("batch") ?? (quick ? 32 : 128)),
  torchOmp: (options.get("torch-omp") ?? "passive") as OmpWaitPolicy,
  /** Intra-op threads on both sides (TensorFlow and PyTorch); inter-op threads are 1 on both. */
  threads: Number(options.get("threads") ?? 2),
};
const THREADS = settings.threads;
const out = options.get("out") ?? "training";
const resultsDir = options.get("results-dir");

const backend = await selectBackend("tensorflow", { intraOpThreads: THREADS, interOpThreads: 1 });
const tf = backend.tf as unknown as TF;

const torchReason = options.has("no-torch") ? "--no-torch" : torchUnavailable();
const torch = torchReason === undefined ? await TorchServer.start({ threads: THREADS, ompWait: settings.torchOmp }) : undefined;
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
    shape, mean, std, blocksPerSection: blocks, seed, epochs: 1, batchSize: batch, schedule: "cosine", augment: false,
  };
  const model = createTrainingModel(tf, trainOptions);
  try {
    for await (const event of trainingEvents(model, trainOptions)) {
      if (event.kind === "step") stamps.push(performance.now());
    }
  } finally {
    model.dispose();
  }
  return stamps.slice(1).map((t, i) => t - stamps[i]!).slice(warmup);
}

interface ThroughputRow {
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
        const runOurs = async () => ours.push(imagesPerSecond(settings.batch, median(await trainModelStepMs(shape, blocks, rep))));
        const runTorch = async () => {
          if (torch === undefined) return;
          const reply = await torch.measure({
            shape: SHAPES[shape].shape, blocks, batch: settings.batch, warmup: settings.warmup, steps: settings.steps,
          });
          theirs.push(imagesPerSecond(settings.batch, median(reply.stepMs)));
        };
        if (rep % 2 === 0) { await runOurs(); await runTorch(); } else { await runTorch(); await runOurs(); }
      }
      const row: ThroughputRow = { shape, blocks, oursImgPerSec: summarize(ours) };
      if (theirs.length > 0) {
        row.torchImgPerSec = summarize(theirs);
        row.ratio = summarize(ours.map((o, i) => o / theirs[i]!));
      }
      rows.push(row);
      console.log(
        `throughput ${shape} L=${blocks}: ours ${round(row.oursImgPerSec.median)} img/s` +
          (row.ratio ? `, torch ${round(row.torchImgPerSec!.median)} img/s, ours/torch ${round(row.ratio.median)} (${round(row.ratio.min)}..${round(row.ratio.max)})` : ""),
      );
    }
  }
  return rows;
}

interface Setup {
  readonly steppers: Array<{ name: string; stepper: Stepper; dispose: () => void }>;
  readonly indices: Int32Array;
  dispose(): void;
}

/** One model per variant, same seed, same data; the variants share the data tensors. */
function setupVariants(shapeName: ShapeName, blocks: number, names: ReadonlyArray<string>): Setup {
  const { shape, mean, std } = SHAPES[shapeName];
  const count = settings.batch;
  const images = tf.tensor4d(syntheticBytes(count * shape[0] * shape[1] * shape[2], 7), [count, ...shape], "int32");
  const labels = tf.tensor1d(syntheticBytes(count, 8, 10), "int32");
  const steppers = names.map((name) => {
    const model = createResNet(tf, { inputShape: shape, blocksPerSection: blocks, classes: 10, seed: 0 });
    const stepper = createStepper(tf, model, { images, labels, mean, std, classes: 10 }, { momentum: 0.9, weightDecay: 5e-4 }, VARIANTS[name]!);
    return { name, stepper, dispose: () => { stepper.dispose(); model.dispose(); } };
  });
  return {
    steppers,
    indices: Int32Array.from({ length: count }, (_, i) => i),
    dispose: () => { steppers.forEach((s) => s.dispose()); images.dispose(); labels.dispose(); },
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

interface VariantRow {
  shape: ShapeName;
  blocks: number;
  imgPerSec: Record<string, Summary>;
  /** Median over repeats of variant / current within one repeat. */
  speedup: Record<string, Summary>;
  /** Median over repeats of variant / torch within one repeat (torch interleaved with the variants). */
  overTorch?: Record<string, Summary>;
}

async function variants(): Promise<VariantRow[]> {
  const rows: VariantRow[] = [];
  const names = Object.keys(VARIANTS);
  for (const shape of settings.shapes) {
    for (const blocks of settings.blocks) {
      const setup = setupVariants(shape, blocks, names);
      const samples = new Map(names.map((n) => [n, [] as number[]]));
      const torchSamples: number[] = [];
      const runs = [
        ...setup.steppers.map(({ name, stepper }) => async () => {
          const ms = Array.from({ length: settings.steps }, () => timeStep(stepper, setup.indices));
          samples.get(name)!.push(imagesPerSecond(settings.batch, median(ms)));
        }),
        async () => {
          if (torch === undefined) return;
          const reply = await torch.measure({ shape: SHAPES[shape].shape, blocks, batch: settings.batch, warmup: settings.warmup, steps: settings.steps });
          torchSamples.push(imagesPerSecond(settings.batch, median(reply.stepMs)));
        },
      ];
      for (const { stepper } of setup.steppers) for (let i = 0; i < settings.warmup; i++) timeStep(stepper, setup.indices);
      for (let rep = 0; rep < settings.repeats; rep++) {
        for (const run of rep % 2 === 0 ? runs : [...runs].reverse()) await run();
      }
      setup.dispose();
      const current = samples.get("current")!;
      const row: VariantRow = {
        shape, blocks,
        imgPerSec: Object.fromEntries(names.map((n) => [n, summarize(samples.get(n)!)])),
        speedup: Object.fromEntries(names.map((n) => [n, summarize(samples.get(n)!.map((v, i) => v / current[i]!))])),
      };
      if (torchSamples.length > 0) {
        row.imgPerSec["torch"] = summarize(torchSamples);
        row.overTorch = Object.fromEntries(names.map((n) => [n, summarize(samples.get(n)!.map((v, i) => v / torchSamples[i]!))]));
      }
      rows.push(row);
      console.log(
        `variants ${shape} L=${blocks}: ` +
          names.map((n) => `${n} ${round(row.imgPerSec[n]!.median)} img/s (x${round(row.speedup[n]!.median)}${row.overTorch ? `, /torch ${round(row.overTorch[n]!.median)}` : ""})`).join(", ") +
          (row.overTorch ? `; torch ${round(row.imgPerSec["torch"]!.median)} img/s` : ""),
      );
    }
  }
  return rows;
}

interface BreakdownRow {
  shape: ShapeName;
  blocks: number;
  variant: string;
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
  const [batch, forward, gradients, step] = [samples.batch, samples.forward, samples.gradients, samples.step].map(median) as [number, number, number, number];
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

async function breakdown(): Promise<{ dispatchMicroseconds: number; ours: BreakdownRow[]; torch: Array<{ shape: ShapeName; blocks: number; stepMs: number; ops: TorchOp[] }> }> {
  const dispatch = dispatchMicroseconds();
  console.log(`breakdown: one tiny native op (16-element add in a tidy) costs ${round(dispatch)} us`);
  const ours: BreakdownRow[] = [];
  const torchRows: Array<{ shape: ShapeName; blocks: number; stepMs: number; ops: TorchOp[] }> = [];
  for (const shape of settings.shapes) {
    for (const blocks of settings.blocks) {
      const setup = setupVariants(shape, blocks, Object.keys(VARIANTS));
      for (const { name, stepper } of setup.steppers) {
        for (let i = 0; i < settings.warmup; i++) timeStep(stepper, setup.indices);
        const phasesMs = phases(stepper, setup.indices);
        const steps = settings.steps;
        const census = opCensus(tf, () => {
          for (let i = 0; i < steps; i++) timeStep(stepper, setup.indices);
        });
        const perStep = (o: { calls: number; ms: number }) => ({ calls: o.calls / steps, ms: o.ms / steps });
        const row: BreakdownRow = {
          shape, blocks, variant: name, phasesMs,
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
        const p = phasesMs;
        console.log(
          `breakdown ${shape} L=${blocks} ${name}: step ${round(p.step)} ms = batch ${round(p.batch)} + forward ${round(p.forward)} + backward ${round(p.backward)} + update ${round(p.update)}; ` +
            `${row.census.opsPerStep} native ops: ${row.census.largeOps.calls} activation-sized ${round(row.census.largeOps.ms)} ms, ` +
            `${row.census.smallOps.calls} small ${round(row.census.smallOps.ms)} ms, JavaScript ${round(row.census.javascriptMs)} ms (census step ${round(row.census.wallMs)} ms)`,
        );
        console.log(`  top ops: ${row.census.ops.slice(0, 12).map((o) => `${o.name} ${o.calls}x ${round(o.ms)} ms`).join(", ")}`);
      }
      setup.dispose();
      if (torch !== undefined) {
        const reply = await torch.measure({ shape: SHAPES[shape].shape, blocks, batch: settings.batch, warmup: settings.warmup, steps: settings.steps, profile: true });
        const timed = await torch.measure({ shape: SHAPES[shape].shape, blocks, batch: settings.batch, warmup: settings.warmup, steps: settings.steps });
        const ops = reply.ops ?? [];
        torchRows.push({ shape, blocks, stepMs: median(timed.stepMs), ops });
        console.log(`  torch ${shape} L=${blocks}: step ${round(median(timed.stepMs))} ms; top ops (self ms/step): ${ops.slice(0, 10).map((o) => `${o.name} ${round(o.selfMs)}`).join(", ")}`);
      }
    }
  }
  return { dispatchMicroseconds: dispatch, ours, torch: torchRows };
}

try {
  const results: Record<string, unknown> = {
    benchmark: "training",
    settings,
    machine: { cpus: availableParallelism(), loadavgStart: loadStart },
    backend: { name: backend.name, tfVersion: backend.tfVersion, tfjsVersion: backend.tfjsVersion, threads: backend.threads, env: backend.env },
    torch: torch === undefined ? { skipped: torchReason } : { threads: THREADS, interOpThreads: 1, ompWaitPolicy: settings.torchOmp },
  };
  results["throughput"] = await throughput();
  if (!options.has("no-variants")) results["variants"] = await variants();
  if (!options.has("no-breakdown")) results["breakdown"] = await breakdown();
  (results["machine"] as Record<string, unknown>)["loadavgEnd"] = loadavg();
  console.log(`wrote ${writeResults(out, results, resultsDir)}`);
} finally {
  await torch?.close();
}

export type { tfjs };
