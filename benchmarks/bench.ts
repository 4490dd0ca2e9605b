/**
 * `npm run bench`: the speed benchmarks in one run, then one summary table and one JSON file.
 *
 *   npm run bench [-- --quick] [--only planning,training,probe,io] [--results-dir DIR] [--summary-only]
 *
 * Each benchmark runs in its own process (TensorFlow's thread pools, PyTorch and DVC do not share one), prints its own
 * tables, and writes its JSON into the results directory (default benchmarks/results; `--quick` writes *-quick.json,
 * which git ignores). The summary then reads those files back: the ratios the speed issue asks for, each measured
 * within one benchmark run (absolute times on a shared 2-core machine are noise, ratios much less so), and the sweep
 * estimate from the measured training throughput. Writes <results-dir>/bench.json (bench-quick.json).
 * `--summary-only` runs nothing and summarises the result files already there (after rerunning one benchmark alone).
 *
 * Full run here: about 35 minutes (planning ~12, training ~12, probe ~5, I/O ~4). `--quick`: about 3 minutes.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import * as path from "node:path";
import type { IoResult } from "./io.ts";
import {
  estimateCpuSweep,
  estimateGpuSweep,
  type CpuSweepEstimate,
  type GpuAssumptions,
  type GpuSweepEstimate,
} from "./lib/estimate.ts";
import { linearFit, throughputPoints } from "../science/throughput.ts";
import { parseOptions, repoRoot, writeResults, type Summary } from "./lib/measure.ts";
import type { PlanningResult } from "./planning.ts";
import type { MemoryRow, OverheadRow, ProbeResult } from "./probe.ts";
import type { ThroughputRow, TrainingResult } from "./training.ts";

export const BENCHMARKS = ["planning", "training", "probe", "io"] as const;
export type BenchmarkName = (typeof BENCHMARKS)[number];

/** Extra arguments of each benchmark in a full `npm run bench` (their own defaults otherwise). */
const FULL_ARGS: Record<BenchmarkName, string[]> = {
  planning: ["--repeats", "9", "--process-repeats", "7"],
  training: [],
  probe: ["--repeats", "9"],
  io: [],
};

/** The results files of one run, as the benchmarks wrote them. */
interface Results {
  readonly planning: PlanningResult | undefined;
  readonly training: TrainingResult | undefined;
  readonly probe: ProbeResult | undefined;
  readonly io: IoResult | undefined;
}

/** One line of the summary: what was measured, its value, and the target where the issue sets one. */
export interface SummaryRow {
  readonly area: BenchmarkName | "estimate";
  readonly metric: string;
  readonly value: string;
  readonly target?: string;
  /** Whether the value meets the target (absent where there is none). */
  readonly met?: boolean;
}

/** Fixed decimals: the table is for reading, the JSON keeps full precision. */
const fmt = (x: number, decimals = 2) => x.toFixed(decimals);

/** The planning benchmark's headline numbers. */
export function planningRows(r: Pick<PlanningResult, "dags">): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const row = (metric: string, value: string, target?: { readonly target: string; readonly met: boolean }) =>
    rows.push({ area: "planning", metric, value, ...target });
  const paper = r.dags.find((d) => d.name.startsWith("paper"));
  if (paper !== undefined) {
    const plan = paper.inProcess.plan.medianMs;
    const underOneSecond = (ms: number, limit: number) => ({ target: "well under 1 s", met: ms < limit });
    row(
      `paper DAG (${paper.nodes} nodes) fully cached: plan, in process`,
      `${fmt(plan, 1)} ms`,
      underOneSecond(plan, 500),
    );
    const real = paper.process?.realCli;
    if (real !== undefined) {
      const runAll = "paper DAG no-op `run all`, whole process";
      row(
        `${runAll}: node bin/pipeline.mjs`,
        `${fmt(real.bundle.medianMs, 0)} ms`,
        underOneSecond(real.bundle.medianMs, 1000),
      );
      row(`${runAll}: npx pipeline`, `${fmt(real.npx.medianMs, 0)} ms`, underOneSecond(real.npx.medianMs, 1000));
      row(`${runAll}: bin from sources (tsx)`, `${fmt(real.sources.medianMs, 0)} ms`);
    }
    const dvc = paper.dvc;
    if (dvc !== undefined && "skipped" in dvc) row("DVC", `skipped: ${dvc.skipped}`);
    else if (dvc !== undefined) row(`\`dvc status\`, same ${dvc.stages} stages`, `${fmt(dvc.status.medianMs, 0)} ms`);
    const ratios = paper.ratios;
    if (ratios?.dvcStatusOverBundleRunAll !== undefined) {
      row("dvc status / our no-op run all (bundled bin), paper DAG", `${fmt(ratios.dvcStatusOverBundleRunAll, 2)}x`);
    }
    if (ratios !== undefined) {
      row("dvc status / our status (tsx), paper DAG", `${fmt(ratios.dvcStatusOverOurStatus, 2)}x`);
    }
  }
  for (const d of r.dags.filter((x) => x.name.startsWith("layered"))) {
    const { plan, planPerNodeMs } = d.inProcess;
    row(
      `layered DAG, ${d.nodes} nodes: plan (per node)`,
      `${fmt(plan.medianMs, 1)} ms (${fmt(planPerNodeMs, 3)} ms/node)`,
    );
    if (d.ratios !== undefined) {
      row(`layered DAG, ${d.nodes} nodes: dvc status / our status`, `${fmt(d.ratios.dvcStatusOverOurStatus, 2)}x`);
    }
  }
  return rows;
}

/** Training throughput against PyTorch, per shape and L. */
export function trainingRows(r: { readonly throughput: ReadonlyArray<ThroughputRow> }): SummaryRow[] {
  return r.throughput.map((t) => {
    const ours = t.oursImgPerSec.median;
    const metric = `train img/s, ${t.shape} L=${t.blocks}: ours / PyTorch`;
    if (t.ratio === undefined || t.torchImgPerSec === undefined) {
      return { area: "training", metric, value: `${fmt(ours, 0)} / (PyTorch not run)` };
    }
    const { median, min, max } = t.ratio;
    return {
      area: "training",
      metric,
      value: `${fmt(ours, 0)} / ${fmt(t.torchImgPerSec.median, 0)} = ${fmt(median, 2)}x (${fmt(min, 2)}..${fmt(max, 2)})`,
      target: ">= 0.8",
      met: median >= 0.8,
    };
  });
}

/** What the probe summary reads of the probe benchmark's results. */
export interface ProbeSummaryInput {
  readonly overhead: ReadonlyArray<
    Pick<OverheadRow, "blocks" | "images" | "probeOverInference" | "probeWithParquetOverInference">
  >;
  readonly memory?: {
    readonly rows: ReadonlyArray<
      Pick<MemoryRow, "images" | "peakTensorMiB" | "peakLiveHeapMiB" | "peakRssMiB" | "baselineRssMiB">
    >;
    readonly peakTensorGrowthMiB: number;
    readonly peakLiveHeapGrowthMiB: number;
  };
}

/** Probe over plain inference, and the memory check. */
export function probeRows(r: ProbeSummaryInput): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const range = (s: Summary) => `${fmt(s.median, 3)} (${fmt(s.min, 3)}..${fmt(s.max, 3)})`;
  for (const o of r.overhead) {
    const ratio = o.probeOverInference.median;
    const metric = `probe / inference, L=${o.blocks}, ${o.images} images`;
    rows.push({ area: "probe", metric, value: range(o.probeOverInference), target: "<= 1.10", met: ratio <= 1.1 });
    const value = fmt(o.probeWithParquetOverInference.median, 3);
    rows.push({ area: "probe", metric: `probe + Parquet writing / inference, L=${o.blocks}`, value });
  }
  const memory = r.memory;
  const first = memory?.rows[0];
  const last = memory?.rows.at(-1);
  if (memory !== undefined && first !== undefined && last !== undefined) {
    const n = `N=${first.images} -> ${last.images}`;
    const flat = (metric: string, from: number, to: number, growth: number, tolerance: number): SummaryRow => {
      const value = `${fmt(from, 1)} -> ${fmt(to, 1)} MiB`;
      return { area: "probe", metric, value, target: "flat in N", met: Math.abs(growth) < tolerance };
    };
    rows.push(
      flat(`peak tensor memory, ${n}`, first.peakTensorMiB, last.peakTensorMiB, memory.peakTensorGrowthMiB, 1),
      flat(
        `peak live JS heap (after GC), ${n}`,
        first.peakLiveHeapMiB,
        last.peakLiveHeapMiB,
        memory.peakLiveHeapGrowthMiB,
        8,
      ),
    );
    const aboveBaseline = (m: (typeof memory.rows)[number]) => fmt(m.peakRssMiB - m.baselineRssMiB, 1);
    const value = `${aboveBaseline(first)} -> ${aboveBaseline(last)} MiB`;
    rows.push({ area: "probe", metric: `peak RSS above baseline, ${n}`, value });
  }
  return rows;
}

/** What benchmarks/io.ts's writers and readers are. */
const IO_LABELS: Record<string, string> = {
  generateOnly: "rows generated, no file",
  hyparquet: "writeParquet / readParquetBatches (hyparquet)",
  hyparquetPrefix: "writeParquet, first rows only",
  parquetjs: "parquetjs-lite (before), first rows only",
  duckdbAppender: "DuckDB appender, same JS rows",
  duckdbEngine: "DuckDB, a table it generates itself",
  duckdbCountAvg: "DuckDB count + avg, our file",
  duckdbFullScanInEngine: "DuckDB full scan in the engine, our file",
  duckdbFullScanToJs: "DuckDB full scan into JS rows, our file",
  parquetjsOwnFile: "parquetjs-lite, its own file",
  hyparquetOnParquetjsFile: "hyparquet, parquetjs-lite's file",
};

/** Parquet write and read throughput. */
export function ioRows(r: Pick<IoResult, "write" | "read">): SummaryRow[] {
  return (["write", "read"] as const).flatMap((kind) =>
    Object.entries(r[kind]).map(([name, t]): SummaryRow => {
      const speedup = t.speedupOverParquetjs?.median;
      const value =
        `${fmt(t.rowsPerSec, 0)} rows/s` +
        (t.mbPerSec > 0 ? `, ${fmt(t.mbPerSec, 1)} MB/s` : "") +
        (speedup === undefined ? "" : `, ${fmt(speedup, 1)}x parquetjs-lite`);
      return { area: "io", metric: `${kind} ${IO_LABELS[name] ?? name} (${t.rows} rows)`, value };
    }),
  );
}

/** What the GPU model reads of the training benchmark's op census. */
export interface CensusInput {
  readonly breakdown?: {
    readonly ours: ReadonlyArray<{
      readonly shape: string;
      readonly blocks: number;
      /** Only in results written while the benchmark also measured prototype variants of the step. */
      readonly variant?: string;
      readonly census: { readonly opsPerStep: number; readonly javascriptMs: number };
    }>;
  };
}

/**
 * The GPU model's assumptions. sustainedFlops: an H100's float32 (non-tensor-core) peak is ~67 TFLOP/s; convolutions
 * with 16-64 channels on 7x7-32x32 maps reach a small fraction, taken as 10 TFLOP/s. secondsPerOp: what each op costs
 * on the host (JS, the tfjs-node binding, a CUDA launch), taken as the measured JS time per op on CPU plus 10 us.
 */
export function gpuAssumptions(training: CensusInput): GpuAssumptions | undefined {
  const census = (training.breakdown?.ours ?? []).filter(
    (b) => (b.variant ?? "current") === "current" && b.shape === "mnist",
  );
  if (census.length < 2) return undefined;
  const opsPerStep = linearFit(
    census.map((b) => b.blocks),
    census.map((b) => b.census.opsPerStep),
  );
  const jsMsPerOp = census.reduce((a, b) => a + b.census.javascriptMs / b.census.opsPerStep, 0) / census.length;
  return { sustainedFlops: 10e12, secondsPerOp: jsMsPerOp / 1000 + 10e-6, opsPerStep };
}

export interface Estimates {
  readonly cpu?: CpuSweepEstimate;
  readonly gpu?: GpuSweepEstimate;
  readonly skipped?: string;
}

export function estimates(training: { readonly throughput: ReadonlyArray<ThroughputRow> } & CensusInput): Estimates {
  const points = throughputPoints(training.throughput);
  const depths = (d: string) => new Set(points.filter((p) => p.dataset === d).map((p) => p.L)).size;
  if (depths("mnist") < 2 || depths("cifar10") < 2) {
    return { skipped: "needs training throughput at two or more depths on both shapes (a full run)" };
  }
  const assumptions = gpuAssumptions(training);
  return {
    cpu: estimateCpuSweep(points),
    ...(assumptions === undefined ? {} : { gpu: estimateGpuSweep(assumptions) }),
  };
}

export function estimateRows(e: Estimates): SummaryRow[] {
  if (e.skipped !== undefined) return [{ area: "estimate", metric: "paper sweep", value: `skipped: ${e.skipped}` }];
  const rows: SummaryRow[] = [];
  if (e.cpu !== undefined) {
    const { hoursByDataset: h, longestRun: longest } = e.cpu;
    rows.push({
      area: "estimate",
      metric: "paper sweep on this CPU (76 runs, one at a time)",
      value:
        `${fmt(e.cpu.totalHours, 0)} h (MNIST ${fmt(h["mnist"] ?? 0, 0)} h, CIFAR-10 ${fmt(h["cifar10"] ?? 0, 0)} h; ` +
        `longest run ${longest.dataset} L=${longest.L}: ${fmt(longest.hours, 0)} h)`,
    });
  }
  if (e.gpu !== undefined) {
    const a = e.gpu.assumptions;
    const ops = `${fmt(a.opsPerStep.intercept, 0)}+${fmt(a.opsPerStep.slope, 1)}L ops/step`;
    rows.push({
      area: "estimate",
      metric: "paper sweep on one GPU (model: max(FLOPs, per-op dispatch) per run)",
      value:
        `${fmt(e.gpu.totalHours, 1)} h (compute ${fmt(e.gpu.computeHours, 1)} h at ${a.sustainedFlops / 1e12} TFLOP/s, ` +
        `dispatch ${fmt(e.gpu.dispatchHours, 1)} h at ${fmt(a.secondsPerOp * 1e6, 1)} us/op x ${ops})`,
    });
  }
  return rows;
}

/** The summary as a Markdown table. */
export function summaryTable(rows: ReadonlyArray<SummaryRow>): string {
  const lines = ["| area | measured | value | target |", "|---|---|---|---|"];
  for (const r of rows) {
    const verdict = r.met === true ? "(met)" : r.met === false ? "(NOT met)" : "";
    const target = r.target === undefined ? "" : `${r.target} ${verdict}`.trim();
    lines.push(`| ${r.area} | ${r.metric} | ${r.value} | ${target} |`);
  }
  return lines.join("\n");
}

/** Every summary row of the results at hand, benchmark by benchmark, then the sweep estimate. */
const summaryRows = (results: Results): SummaryRow[] => {
  const { planning, training, probe, io } = results;
  return [
    ...(planning === undefined ? [] : planningRows(planning)),
    ...(training === undefined ? [] : trainingRows(training)),
    ...(probe === undefined ? [] : probeRows(probe)),
    ...(io === undefined ? [] : ioRows(io)),
    ...(training === undefined ? [] : estimateRows(estimates(training))),
  ];
};

/** Where each benchmark writes its results, and the arguments that make it write there. */
const outputOf = (name: BenchmarkName, dir: string, quick: boolean): { file: string; args: string[] } => {
  const base = quick ? `${name}-quick` : name;
  return { file: path.join(dir, `${base}.json`), args: ["--results-dir", dir, "--out", base] };
};

/** A results file as its benchmark wrote it (the writer's own type: this repository writes and reads it). */
const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, "utf8")) as T;

/** What bench.json records of the run that produced the results files. */
interface RunRecord {
  readonly started: string;
  readonly runs: Record<string, { readonly seconds: number; readonly exitCode: number | null }>;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2), ["quick", "only", "results-dir", "summary-only"]);
  const summaryOnly = options.has("summary-only");
  const quick = options.has("quick");
  const only = (options.get("only") ?? BENCHMARKS.join(",")).split(",");
  for (const name of only) {
    if (!(BENCHMARKS as ReadonlyArray<string>).includes(name)) {
      throw new Error(`unknown benchmark '${name}' (${BENCHMARKS.join(", ")})`);
    }
  }
  const dir = path.resolve(options.get("results-dir") ?? path.join(repoRoot, "benchmarks/results"));
  const started = new Date();
  const files: Partial<Record<BenchmarkName, string>> = {};
  const runs: RunRecord["runs"] = {};
  for (const name of BENCHMARKS.filter((b) => only.includes(b))) {
    const { file, args } = outputOf(name, dir, quick);
    if (summaryOnly) {
      if (existsSync(file)) files[name] = file;
      else console.log(`${name}: no ${file} to summarise`);
      continue;
    }
    const script = path.join(repoRoot, "benchmarks", `${name}.ts`);
    const command = ["--import", "tsx", script, ...(quick ? ["--quick"] : FULL_ARGS[name]), ...args];
    console.log(`\n=== ${name}: node ${command.join(" ")}`);
    const t0 = performance.now();
    const child = spawnSync(process.execPath, command, { cwd: repoRoot, stdio: "inherit" });
    runs[name] = { seconds: (performance.now() - t0) / 1000, exitCode: child.status };
    if (child.status !== 0 || !existsSync(file)) {
      console.log(`${name} failed (exit ${child.status ?? child.signal}); its rows are left out of the summary`);
      continue;
    }
    files[name] = file;
  }
  const read = <T>(file: string | undefined) => (file === undefined ? undefined : readJson<T>(file));
  const results: Results = {
    planning: read<PlanningResult>(files.planning),
    training: read<TrainingResult>(files.training),
    probe: read<ProbeResult>(files.probe),
    io: read<IoResult>(files.io),
  };
  const rows = summaryRows(results);
  const table = summaryTable(rows);
  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");
  console.log(`\n=== summary (${quick ? "quick" : "full"} run, load average now ${load})\n\n${table}\n`);
  // A re-summary keeps the record of the run that produced the files.
  const name = quick ? "bench-quick" : "bench";
  const previous = path.join(dir, `${name}.json`);
  const ran: RunRecord =
    summaryOnly && existsSync(previous) ? readJson<RunRecord>(previous) : { started: started.toISOString(), runs };
  const estimate = results.training === undefined ? undefined : estimates(results.training);
  const record = {
    benchmark: "bench",
    quick,
    started: ran.started,
    runs: ran.runs,
    ...(summaryOnly ? { resummarisedAt: started.toISOString() } : {}),
    summary: rows,
    estimate,
    table,
  };
  console.log(`wrote ${writeResults(name, record, dir)}`);
  if (Object.values(runs).some((r) => r.exitCode !== 0)) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main().catch((error: unknown) => {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`); // a bad flag: one line, no stack
    process.exitCode = 2;
  });
}
