/**
 * Keeps the ML benchmarks (benchmarks/training.ts, probe.ts, io.ts and their lib/ml-* helpers) working: the
 * rebuilt training step must be trainModel's step, the Parquet writers io.ts compares must write the rows the
 * pipeline's reader gives back, its checks must catch a mismatch, and each benchmark must run at tiny sizes (io.ts
 * in process, the others as CLIs in --quick mode). The PyTorch reference is exercised only where `import torch` works.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readParquet, readParquetBatches, writeParquet } from "../../pipeline/parquet.ts";
import { selectBackend } from "../../science/backend/select.ts";
import { createResNet, type ResNet } from "../../science/resnet.ts";
import { epochPlan, learningRateAt, trainModel } from "../../science/training.ts";
import { duckdbCheck, readCheck, runIoBenchmark } from "../io.ts";
import type { ProbeResult } from "../probe.ts";
import type { TrainingResult } from "../training.ts";
import { duckdbWriteParquet } from "../lib/ml-duckdb-io.ts";
import { repoRoot, syntheticBytes } from "../lib/measure.ts";
import { LARGE_OUTPUT_ELEMENTS, opCensus } from "../lib/ml-op-census.ts";
import { PROBE_TABLE, syntheticProbeRows } from "../lib/ml-probe-rows.ts";
import { TorchServer, torchUnavailable } from "../lib/ml-torch.ts";
import { parquetjsReadBatches, parquetjsWrite } from "../lib/parquetjs-io.ts";
import { createStepper } from "../lib/ml-train-step.ts";

const scratch = mkdtempSync(path.join(tmpdir(), "bench-ml-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const native = await selectBackend("tensorflow").then(
  (info) => ({ tf: info.tf, reason: "" }),
  (error: unknown) => ({ tf: undefined, reason: error instanceof Error ? error.message : String(error) }),
);
const tf = native.tf!;

const SHAPE = [6, 6, 1] as const;
const PER_IMAGE = SHAPE[0] * SHAPE[1] * SHAPE[2];
const MEAN = [0.5];
const STD = [0.25];
const BATCH = 4;
const COUNT = 8;
const SEED = 3;
const images = syntheticBytes(COUNT * PER_IMAGE, 11);
const labels = syntheticBytes(COUNT, 12, 10);

const valuesOf = (model: ResNet) => new Map(model.variables.map((v) => [v.name, Array.from(v.variable.dataSync())]));

/** A fresh model and stepper with trainModel's seed and data; `steps` steps of trainModel's order and rates. */
function stepperRun(steps: number) {
  const model = createResNet(tf, { inputShape: SHAPE, blocksPerSection: 1, classes: 10, seed: SEED });
  const data = {
    images: tf.tensor4d(images, [COUNT, ...SHAPE], "int32"),
    labels: tf.tensor1d(labels, "int32"),
    mean: MEAN,
    std: STD,
    classes: 10,
  };
  const stepper = createStepper(tf, model, data, { momentum: 0.9, weightDecay: 5e-4 });
  const order = epochPlan(SEED, 0, COUNT, false).order;
  const stepsPerEpoch = COUNT / BATCH;
  for (let s = 0; s < steps; s++) {
    const rate = learningRateAt("cosine", 0.1, s / stepsPerEpoch, 1);
    const { lossSum, errors } = stepper.step(order.subarray(s * BATCH, (s + 1) * BATCH), rate);
    lossSum.dispose();
    errors.dispose();
  }
  const weights = valuesOf(model);
  stepper.dispose();
  model.dispose();
  data.images.dispose();
  data.labels.dispose();
  return weights;
}

describe.skipIf(native.tf === undefined)(
  `training step pieces (native backend${native.reason ? `: ${native.reason}` : ""})`,
  () => {
    it("the rebuilt step gives trainModel's weights bit for bit", async () => {
      const trained = await trainModel(tf, {
        train: { images, labels, count: COUNT },
        test: { images: images.subarray(0, PER_IMAGE), labels: labels.subarray(0, 1), count: 1 },
        shape: SHAPE,
        mean: MEAN,
        std: STD,
        blocksPerSection: 1,
        seed: SEED,
        epochs: 1,
        batchSize: BATCH,
        schedule: "cosine",
        augment: false,
      });
      const expected = valuesOf(trained.model);
      trained.model.dispose();
      expect(stepperRun(COUNT / BATCH)).toEqual(expected);
    });

    it("the step with TensorFlow's fused BN-ReLU kernels is bit-reproducible run to run (replay relies on it)", () => {
      expect(stepperRun(2)).toEqual(stepperRun(2));
    });

    it("the op census sorts ops by output size and accounts for all wall time", () => {
      const big = tf.ones([LARGE_OUTPUT_ELEMENTS]);
      const small = tf.ones([3]);
      const census = opCensus(tf, () => {
        tf.tidy(() => {
          tf.add(big, big);
          tf.mul(small, small);
          tf.mul(small, small);
        });
      });
      expect(census.large["AddV2"] ?? census.large["Add"]).toMatchObject({ calls: 1 });
      expect(census.small["Mul"]).toMatchObject({ calls: 2 });
      expect(census.largeOps.ms + census.smallOps.ms + census.javascriptMs).toBeCloseTo(census.wallMs, 6);
      tf.dispose([big, small]);
    });
  },
);

describe("artifact I/O: the writers and readers benchmarks/io.ts compares", () => {
  const expected = [...syntheticProbeRows(2, 1001)];
  const written = (name: string) => path.join(scratch, `${name}.parquet`);

  it("writeParquet (hyparquet-writer), the old parquetjs-lite writer and DuckDB's appender write files that readParquet gives back as the rows", async () => {
    expect(expected.filter((r) => r["scaled"] === null)).toHaveLength(3 * 2 * 2); // images 0 and 1000 of every block: nulls are exercised
    expect(await writeParquet(written("ours"), PROBE_TABLE, syntheticProbeRows(2, 1001))).toBe(expected.length);
    expect(await parquetjsWrite(written("parquetjs"), PROBE_TABLE, syntheticProbeRows(2, 1001))).toBe(expected.length);
    expect(await duckdbWriteParquet(written("duckdb"), PROBE_TABLE, syntheticProbeRows(2, 1001))).toBe(expected.length);
    for (const name of ["ours", "parquetjs", "duckdb"]) {
      expect(
        (await readParquet(written(name))).map((r) => ({ ...r })),
        name,
      ).toEqual(expected);
    }
    // The same rows give the same bytes (artifact keys hash bytes).
    await writeParquet(written("ours-again"), PROBE_TABLE, syntheticProbeRows(2, 1001));
    expect(readFileSync(written("ours-again")).equals(readFileSync(written("ours")))).toBe(true);
    await duckdbWriteParquet(written("duckdb-again"), PROBE_TABLE, syntheticProbeRows(2, 1001));
    expect(readFileSync(written("duckdb-again")).equals(readFileSync(written("duckdb")))).toBe(true);
  });

  it("the benchmark's checks pass on agreeing files and fail on others: DuckDB reads our file bit for bit, parquetjs-lite reads only its own", async () => {
    await writeParquet(written("ours"), PROBE_TABLE, expected);
    expect(await duckdbCheck(written("ours"), expected, expected.length)).toEqual({ ok: true, rows: expected.length });
    expect(await readCheck(readParquetBatches, written("ours"), expected, expected.length)).toEqual({
      ok: true,
      rows: expected.length,
    });
    // A value off by 2^-52, rows out of step, a row missing from the file: each is caught.
    const nudged = expected.map((r, i) => (i === 1234 ? { ...r, abs: (r["abs"] as number) + Number.EPSILON } : r));
    expect((await duckdbCheck(written("ours"), nudged, expected.length)).error).toMatch(/^row 1234 column abs/);
    expect((await readCheck(readParquetBatches, written("ours"), nudged, expected.length)).error).toMatch(
      /^row 1234 column abs/,
    );
    expect((await duckdbCheck(written("ours"), expected.slice(1), expected.length - 1)).ok).toBe(false);
    expect((await readCheck(readParquetBatches, written("ours"), expected, expected.length + 1)).error).toMatch(
      /expected/,
    );
    // parquetjs-lite reads what it wrote, and rejects hyparquet-writer's format version 2 footer.
    await parquetjsWrite(written("parquetjs"), PROBE_TABLE, expected);
    expect(await readCheck(parquetjsReadBatches, written("parquetjs"), expected, expected.length)).toEqual({
      ok: true,
      rows: expected.length,
    });
    expect(await readCheck(parquetjsReadBatches, written("ours"), expected, expected.length)).toEqual({
      ok: false,
      error: "invalid parquet version",
    });
  });

  it("runIoBenchmark at tiny sizes measures every writer and reader and its checks pass", async () => {
    const lines: string[] = [];
    const r = await runIoBenchmark({
      blocks: 1,
      images: 300,
      repeats: 1,
      parquetjsRows: 500,
      log: (line) => lines.push(line),
    });
    expect(r.settings).toMatchObject({ rows: 900, parquetjsRows: 500 });
    expect(Object.keys(r.write)).toEqual([
      "generateOnly",
      "hyparquet",
      "hyparquetPrefix",
      "parquetjs",
      "duckdbAppender",
      "duckdbEngine",
    ]);
    expect(Object.keys(r.read)).toEqual([
      "hyparquet",
      "duckdbCountAvg",
      "duckdbFullScanInEngine",
      "duckdbFullScanToJs",
      "parquetjsOwnFile",
      "hyparquetOnParquetjsFile",
    ]);
    expect(r.write["parquetjs"]!.rows).toBe(500);
    expect(r.write["hyparquetPrefix"]!.rows).toBe(500);
    expect(r.write["hyparquet"]!.speedupOverParquetjs!.n).toBe(1);
    expect(r.checks).toEqual({
      hyparquetRoundTrip: { ok: true, rows: 900 },
      duckdbReadsOurFile: { ok: true, rows: 900 },
      hyparquetReadsParquetjsFile: { ok: true, rows: 500 },
      parquetjsReadsOurFile: { ok: false, error: "invalid parquet version" },
      deterministicBytes: {
        hyparquet: true,
        hyparquetPrefix: true,
        parquetjs: true,
        duckdbAppender: true,
        duckdbEngine: true,
      },
    });
    expect(JSON.parse(JSON.stringify(r))).toEqual(r); // JSON-safe
    expect(lines.join("\n")).toMatch(/checks: /);
  });
});

/** Runs a benchmark CLI at tiny sizes; returns its parsed results JSON. */
function runCli(script: string, args: string[], name: string): Record<string, unknown> {
  const result = spawnSync(
    process.execPath,
    ["--import", "tsx", path.join(repoRoot, "benchmarks", script), ...args, "--out", name, "--results-dir", scratch],
    {
      cwd: repoRoot,
      encoding: "utf8",
      timeout: 110_000,
    },
  );
  expect(result.status, `${script} failed:\n${result.stdout}\n${result.stderr}`).toBe(0);
  return JSON.parse(readFileSync(path.join(scratch, `${name}.json`), "utf8")) as Record<string, unknown>;
}

describe.skipIf(native.tf === undefined)("benchmark CLIs in --quick mode at tiny sizes", () => {
  it("training.ts measures trainModel and breaks the rebuilt step down by phase and native op", () => {
    const args = ["--quick", "--batch", "8", "--steps", "2", "--warmup", "1", "--repeats", "1", "--no-torch"];
    const r = runCli("training.ts", args, "training") as unknown as TrainingResult;
    expect(r.throughput.map((t) => [t.shape, t.blocks, t.oursImgPerSec.n])).toEqual([["mnist", 1, 1]]);
    const [row, ...more] = r.breakdown!.ours;
    expect(more).toEqual([]);
    // Every step runs the same ops, so ops per step is whole; training runs TensorFlow's fused BN-ReLU kernels.
    expect(Number.isInteger(row!.census.opsPerStep)).toBe(true);
    const names = row!.census.ops.map((o) => o.name);
    expect(names).toEqual(expect.arrayContaining(["Conv2D", "FusedBatchNormV3", "FusedBatchNormGradV3"]));
    expect(r.torch).toEqual({ skipped: "--no-torch" });
  });

  it("probe.ts measures the probe's overhead and its memory at two N", () => {
    const r = runCli(
      "probe.ts",
      ["--quick", "--images", "40", "--batch", "20", "--repeats", "1", "--memory-images", "20,40"],
      "probe",
    );
    const { overhead, memory } = r as unknown as ProbeResult;
    expect(overhead.map((o) => [o.blocks, o.images, o.probeOverInference.n])).toEqual([[1, 40, 1]]);
    // One row per section, block and image: 3 x 1 x N.
    expect(memory!.rows.map((m) => [m.images, m.rows])).toEqual([
      [20, 60],
      [40, 120],
    ]);
  });
});

const torchReason = torchUnavailable();

describe.skipIf(torchReason !== undefined)(
  `PyTorch reference${torchReason === undefined ? "" : ` (skipped: ${torchReason})`}`,
  () => {
    it("torch_reference.py answers a training request with per-step times", async () => {
      const server = await TorchServer.start({ threads: 2, ompWait: "passive" });
      try {
        const reply = await server.measure({ shape: [8, 8, 1], blocks: 1, batch: 4, warmup: 1, steps: 2 });
        expect(reply.stepMs).toHaveLength(2);
        expect(reply.stepMs.every((ms) => ms > 0)).toBe(true);
        expect(reply.threads).toBe(2);
      } finally {
        await server.close();
      }
    });
  },
);
