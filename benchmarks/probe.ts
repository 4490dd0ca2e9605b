/**
 * Probe overhead and memory: science/probe.ts probeBatches (eval forward + per-block norm reductions + host transfer
 * + rows in JS) against plain inference (model.forward in eval mode on the same images and batch size, logits read
 * back per batch), interleaved, on a He-initialised model with MNIST-shaped synthetic images. Also the whole probe
 * stage's data path: probe rows streamed into pipeline/parquet.ts writeParquet as stages/probe.ts does.
 * Memory: one child process per N (so peaks do not mix) runs probe + Parquet writing and reports peak RSS and the
 * peak of tf.memory().numBytes (sampled after every native op); flat in N means peaks that do not grow with N.
 *
 *   npx tsx benchmarks/probe.ts [--quick] [--blocks 4,16] [--images 1000] [--batch 100] [--repeats 5]
 *                               [--memory-images 1000,10000] [--memory-blocks 4] [--no-memory] [--out probe]
 *                               [--results-dir DIR]
 *
 * Target: probe / inference <= 1.10. Writes benchmarks/results/<out>.json. `--quick`: L = 1, 200 images,
 * 2 repeats, memory at N = 200 and 1,000.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { selectBackend } from "../science/backend/select.ts";
import { probeBatches } from "../science/probe.ts";
import { createResNet, toModelInput, type ResNet } from "../science/resnet.ts";
import {
  countOption,
  PeakMemory,
  parseIntList,
  parseOptions,
  repoRoot,
  round,
  summarize,
  syntheticBytes,
  writeResults,
  type Summary,
} from "./lib/measure.ts";
import { interceptOps } from "./lib/ml-op-census.ts";
import { probeToParquet } from "./lib/ml-probe-rows.ts";

const SHAPE = [28, 28, 1] as const;
const MEAN = [0.1307];
const STD = [0.3081];
const PER_IMAGE = SHAPE[0] * SHAPE[1] * SHAPE[2];

const options = parseOptions(process.argv.slice(2), [
  "quick",
  "blocks",
  "images",
  "batch",
  "repeats",
  "memory-images",
  "memory-blocks",
  "no-memory",
  "out",
  "results-dir",
  "child-memory",
]);
const quick = options.has("quick");
const settings = {
  quick,
  shape: SHAPE,
  blocks: parseIntList(options.get("blocks") ?? (quick ? "1" : "4,16")),
  images: countOption(options, "images") ?? (quick ? 200 : 1000),
  batch: countOption(options, "batch") ?? 100,
  repeats: countOption(options, "repeats") ?? (quick ? 2 : 5),
  memoryImages: parseIntList(options.get("memory-images") ?? (quick ? "200,1000" : "1000,10000")),
  memoryBlocks: countOption(options, "memory-blocks") ?? (quick ? 1 : 4),
};

const resultsDir = options.get("results-dir");
const backend = await selectBackend("tensorflow", { intraOpThreads: 2, interOpThreads: 1 });
const tf = backend.tf;
const newModel = (blocks: number): ResNet =>
  createResNet(tf, { inputShape: SHAPE, blocksPerSection: blocks, classes: 10, seed: 0 });

/** Plain inference: the probe's forward pass without onBlock, logits read back per batch. */
async function inference(model: ResNet, images: Uint8Array, count: number): Promise<void> {
  for (let start = 0; start < count; start += settings.batch) {
    const end = Math.min(count, start + settings.batch);
    const logits = tf.tidy(() => {
      const pixels = tf.tensor4d(images.subarray(start * PER_IMAGE, end * PER_IMAGE), [end - start, ...SHAPE], "int32");
      return model.forward(toModelInput(tf, pixels, MEAN, STD), { training: false });
    });
    await logits.data();
    logits.dispose();
  }
}

async function seconds(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
}

export interface OverheadRow {
  blocks: number;
  images: number;
  inferenceImgPerSec: Summary;
  probeImgPerSec: Summary;
  probeWithParquetImgPerSec: Summary;
  /** Per repeat: probe time / inference time (target <= 1.10). */
  probeOverInference: Summary;
  probeWithParquetOverInference: Summary;
}

async function overhead(): Promise<OverheadRow[]> {
  const rows: OverheadRow[] = [];
  const images = syntheticBytes(settings.images * PER_IMAGE, 3);
  const data = { images, count: settings.images };
  const dir = mkdtempSync(path.join(tmpdir(), "bench-probe-"));
  try {
    for (const blocks of settings.blocks) {
      const model = newModel(blocks);
      const probeOptions = { batchSize: settings.batch, mean: MEAN, std: STD };
      const runs = {
        inference: () => inference(model, images, settings.images),
        probe: async () => {
          for await (const _batch of probeBatches(tf, model, data, probeOptions));
        },
        probeWithParquet: () =>
          probeToParquet(
            tf,
            model,
            data,
            { batchSize: settings.batch, mean: MEAN, std: STD },
            path.join(dir, `probe-${blocks}.parquet`),
          ),
      };
      const names = Object.keys(runs) as Array<keyof typeof runs>;
      const samples = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<keyof typeof runs, number[]>;
      await inference(model, images, Math.min(settings.images, 2 * settings.batch)); // warm-up: kernel set-up
      await runs.probe();
      for (let rep = 0; rep < settings.repeats; rep++) {
        for (const name of rep % 2 === 0 ? names : [...names].reverse()) samples[name].push(await seconds(runs[name]));
      }
      model.dispose();
      const rate = (xs: number[]) => summarize(xs.map((s) => settings.images / s));
      const row: OverheadRow = {
        blocks,
        images: settings.images,
        inferenceImgPerSec: rate(samples.inference),
        probeImgPerSec: rate(samples.probe),
        probeWithParquetImgPerSec: rate(samples.probeWithParquet),
        probeOverInference: summarize(samples.probe.map((s, i) => s / samples.inference[i]!)),
        probeWithParquetOverInference: summarize(samples.probeWithParquet.map((s, i) => s / samples.inference[i]!)),
      };
      rows.push(row);
      console.log(
        `overhead L=${blocks}, ${settings.images} images: inference ${round(row.inferenceImgPerSec.median)} img/s, probe ${round(row.probeImgPerSec.median)} img/s ` +
          `(probe/inference ${round(row.probeOverInference.median)}, ${round(row.probeOverInference.min)}..${round(row.probeOverInference.max)}), ` +
          `probe+parquet ${round(row.probeWithParquetImgPerSec.median)} img/s (x${round(row.probeWithParquetOverInference.median)})`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

export interface MemoryRow {
  images: number;
  blocks: number;
  rows: number;
  parquetMiB: number;
  seconds: number;
  /** RSS after the model is built and the images are in memory, before probing. */
  baselineRssMiB: number;
  peakRssMiB: number;
  peakTensorMiB: number;
  /**
   * Largest live JS heap, measured after a forced GC at every batch: what the process holds, unlike RSS, which V8
   * lets grow lazily.
   */
  peakLiveHeapMiB: number;
}

/** Child-process body: probe + Parquet for N images; prints one JSON line. */
async function memoryChild(count: number): Promise<void> {
  const model = newModel(settings.memoryBlocks);
  const images = syntheticBytes(count * PER_IMAGE, 5);
  const dir = mkdtempSync(path.join(tmpdir(), "bench-probe-mem-"));
  try {
    const file = path.join(dir, "perturbations.parquet");
    await inference(model, images, Math.min(count, settings.batch)); // kernels set up before the baseline
    const baselineRss = process.memoryUsage.rss();
    const peak = new PeakMemory(() => tf.memory().numBytes);
    const stopSampling = interceptOps(tf, () => peak.sampleGauge());
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined) throw new Error("the memory child needs node --expose-gc");
    let peakLiveHeap = 0;
    const t0 = performance.now();
    const { written } = await probeToParquet(
      tf,
      model,
      { images, count },
      {
        batchSize: settings.batch,
        mean: MEAN,
        std: STD,
        onBatch: () => {
          peak.sample();
          gc();
          peakLiveHeap = Math.max(peakLiveHeap, process.memoryUsage().heapUsed);
        },
      },
      file,
    );
    const secondsTaken = (performance.now() - t0) / 1000;
    stopSampling();
    const peaks = peak.stop();
    const row: MemoryRow = {
      images: count,
      blocks: settings.memoryBlocks,
      rows: written,
      parquetMiB: statSync(file).size / 2 ** 20,
      seconds: secondsTaken,
      baselineRssMiB: baselineRss / 2 ** 20,
      peakRssMiB: peaks.rssMiB,
      peakTensorMiB: peaks.gaugeMiB,
      peakLiveHeapMiB: peakLiveHeap / 2 ** 20,
    };
    console.log(JSON.stringify(row));
  } finally {
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

function runChild(count: number): Promise<MemoryRow> {
  const script = fileURLToPath(import.meta.url);
  const args = [
    "--expose-gc",
    "--import",
    "tsx",
    script,
    "--child-memory",
    String(count),
    "--memory-blocks",
    String(settings.memoryBlocks),
    "--batch",
    String(settings.batch),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const last = stdout.trim().split("\n").pop() ?? "";
      if (code !== 0 || !last.startsWith("{"))
        reject(
          new Error(
            `memory child for N=${count} failed (exit ${code}): ${stderr.trim().split("\n").slice(-3).join(" | ")}`,
          ),
        );
      else resolve(JSON.parse(last) as MemoryRow);
    });
  });
}

/** Peaks at each N, and their growth from the smallest N to the largest. */
export interface MemoryResult {
  rows: MemoryRow[];
  peakRssGrowthMiB: number;
  peakTensorGrowthMiB: number;
  peakLiveHeapGrowthMiB: number;
}

async function memory(): Promise<MemoryResult> {
  const rows: MemoryRow[] = [];
  for (const count of settings.memoryImages) {
    const row = await runChild(count);
    rows.push(row);
    console.log(
      `memory N=${count} L=${row.blocks}: ${row.rows} rows in ${round(row.seconds)} s, RSS ${round(row.baselineRssMiB)} -> peak ${round(row.peakRssMiB)} MiB, ` +
        `live JS heap peak ${round(row.peakLiveHeapMiB)} MiB, tensors peak ${round(row.peakTensorMiB)} MiB, parquet ${round(row.parquetMiB)} MiB`,
    );
  }
  const first = rows[0]!;
  const last = rows[rows.length - 1]!;
  return {
    rows,
    peakRssGrowthMiB: last.peakRssMiB - last.baselineRssMiB - (first.peakRssMiB - first.baselineRssMiB),
    peakTensorGrowthMiB: last.peakTensorMiB - first.peakTensorMiB,
    peakLiveHeapGrowthMiB: last.peakLiveHeapMiB - first.peakLiveHeapMiB,
  };
}

/** What benchmarks/results/probe.json holds (bench.ts summarises it). */
export interface ProbeResult {
  readonly benchmark: "probe";
  readonly settings: typeof settings;
  readonly backend: Record<string, unknown>;
  readonly loadavgStart: number[];
  readonly loadavgEnd: number[];
  readonly overhead: OverheadRow[];
  readonly memory?: MemoryResult;
}

const child = options.get("child-memory");
if (child !== undefined) {
  await memoryChild(Number(child));
} else {
  const loadavgStart = loadavg();
  const overheadRows = await overhead();
  const mem = options.has("no-memory") ? undefined : await memory();
  if (mem !== undefined) {
    const [first, last] = [settings.memoryImages[0], settings.memoryImages.at(-1)];
    console.log(
      `memory growth from N=${first} to N=${last}: peak RSS above baseline ${round(mem.peakRssGrowthMiB)} MiB, ` +
        `live JS heap ${round(mem.peakLiveHeapGrowthMiB)} MiB, peak tensors ${round(mem.peakTensorGrowthMiB)} MiB`,
    );
  }
  const results: ProbeResult = {
    benchmark: "probe",
    settings,
    backend: { name: backend.name, tfVersion: backend.tfVersion, threads: backend.threads },
    loadavgStart,
    loadavgEnd: loadavg(),
    overhead: overheadRows,
    ...(mem === undefined ? {} : { memory: mem }),
  };
  console.log(`wrote ${writeResults(options.get("out") ?? "probe", results, resultsDir)}`);
}
