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
import { estimateCpuSweep, estimateGpuSweep, linearFit, type CpuSweepEstimate, type GpuAssumptions, type GpuSweepEstimate, type ThroughputPoint } from "./lib/estimate.ts";
import { parseOptions, repoRoot, writeResults } from "./lib/ml-measure.ts";

export const BENCHMARKS = ["planning", "training", "probe", "io"] as const;
export type BenchmarkName = (typeof BENCHMARKS)[number];

/** Extra arguments of each benchmark in a full `npm run bench` (their own defaults otherwise). */
const FULL_ARGS: Record<BenchmarkName, string[]> = {
  planning: ["--repeats", "9", "--process-repeats", "7"],
  training: ["--no-variants"],
  probe: ["--repeats", "9"],
  io: [],
};

/** One line of the summary: what was measured, its value, and the target where the issue sets one. */
export interface SummaryRow {
  readonly area: BenchmarkName | "estimate";
  readonly metric: string;
  readonly value: string;
  readonly target?: string;
  /** Whether the value meets the target (absent where there is none). */
  readonly met?: boolean;
}

type Json = Record<string, any>; // results files as written by the benchmarks; read defensively

/** Fixed decimals: the table is for reading, the JSON keeps full precision. */
const fmt = (x: number, decimals = 2) => x.toFixed(decimals);

/** The planning benchmark's headline numbers. */
export function planningRows(r: Json): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const dags = (r["dags"] ?? []) as Json[];
  const paper = dags.find((d) => String(d["name"]).startsWith("paper"));
  if (paper !== undefined) {
    const plan = paper["inProcess"]?.["plan"]?.["medianMs"];
    if (typeof plan === "number") {
      rows.push({ area: "planning", metric: `paper DAG (${paper["nodes"]} nodes) fully cached: plan, in process`, value: `${fmt(plan, 1)} ms`, target: "well under 1 s", met: plan < 500 });
    }
    const real = paper["process"]?.["realCli"];
    for (const [key, label] of [["bundle", "node bin/pipeline.mjs"], ["npx", "npx pipeline"], ["sources", "bin from sources (tsx)"]] as const) {
      const ms = real?.[key]?.["medianMs"];
      if (typeof ms === "number") {
        rows.push({ area: "planning", metric: `paper DAG no-op \`run all\`, whole process: ${label}`, value: `${fmt(ms, 0)} ms`, ...(key === "sources" ? {} : { target: "well under 1 s", met: ms < 1000 }) });
      }
    }
    const dvc = paper["dvc"]?.["status"]?.["medianMs"];
    if (typeof dvc === "number") rows.push({ area: "planning", metric: `\`dvc status\`, same ${paper["dvc"]["stages"]} stages`, value: `${fmt(dvc, 0)} ms` });
    const ratios = paper["ratios"];
    if (typeof ratios?.["dvcStatusOverBundleRunAll"] === "number") {
      rows.push({ area: "planning", metric: "dvc status / our no-op run all (bundled bin), paper DAG", value: `${fmt(ratios["dvcStatusOverBundleRunAll"], 2)}x` });
    }
    if (typeof ratios?.["dvcStatusOverOurStatus"] === "number") {
      rows.push({ area: "planning", metric: "dvc status / our status (tsx), paper DAG", value: `${fmt(ratios["dvcStatusOverOurStatus"], 2)}x` });
    }
    if (paper["dvc"]?.["skipped"] !== undefined) rows.push({ area: "planning", metric: "DVC", value: `skipped: ${paper["dvc"]["skipped"]}` });
  }
  for (const d of dags.filter((x) => String(x["name"]).startsWith("layered"))) {
    const plan = d["inProcess"]?.["plan"]?.["medianMs"];
    if (typeof plan === "number") {
      rows.push({ area: "planning", metric: `layered DAG, ${d["nodes"]} nodes: plan (per node)`, value: `${fmt(plan, 1)} ms (${fmt(d["inProcess"]["planPerNodeMs"], 3)} ms/node)` });
    }
    if (typeof d["ratios"]?.["dvcStatusOverOurStatus"] === "number") {
      rows.push({ area: "planning", metric: `layered DAG, ${d["nodes"]} nodes: dvc status / our status`, value: `${fmt(d["ratios"]["dvcStatusOverOurStatus"], 2)}x` });
    }
  }
  return rows;
}

/** Training throughput against PyTorch, per shape and L. */
export function trainingRows(r: Json): SummaryRow[] {
  return ((r["throughput"] ?? []) as Json[]).map((t) => {
    const ours = t["oursImgPerSec"]?.["median"] as number;
    const torch = t["torchImgPerSec"]?.["median"] as number | undefined;
    const ratio = t["ratio"]?.["median"] as number | undefined;
    const metric = `train img/s, ${t["shape"]} L=${t["blocks"]}: ours / PyTorch`;
    if (ratio === undefined || torch === undefined) return { area: "training", metric, value: `${fmt(ours, 0)} / (PyTorch not run)` };
    return {
      area: "training",
      metric,
      value: `${fmt(ours, 0)} / ${fmt(torch, 0)} = ${fmt(ratio, 2)}x (${fmt(t["ratio"]["min"], 2)}..${fmt(t["ratio"]["max"], 2)})`,
      target: ">= 0.8",
      met: ratio >= 0.8,
    };
  });
}

/** Probe over plain inference, and the memory check. */
export function probeRows(r: Json): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const o of (r["overhead"] ?? []) as Json[]) {
    const ratio = o["probeOverInference"]["median"] as number;
    rows.push({
      area: "probe",
      metric: `probe / inference, L=${o["blocks"]}, ${o["images"]} images`,
      value: `${fmt(ratio, 3)} (${fmt(o["probeOverInference"]["min"], 3)}..${fmt(o["probeOverInference"]["max"], 3)})`,
      target: "<= 1.10",
      met: ratio <= 1.1,
    });
    rows.push({
      area: "probe",
      metric: `probe + Parquet writing / inference, L=${o["blocks"]}`,
      value: fmt(o["probeWithParquetOverInference"]["median"], 3),
    });
  }
  const memory = r["memory"];
  if (memory !== undefined) {
    const first = memory["rows"][0];
    const last = memory["rows"].at(-1);
    const live = memory["peakLiveHeapGrowthMiB"] as number | undefined;
    rows.push({
      area: "probe",
      metric: `peak tensor memory, N=${first["images"]} -> ${last["images"]}`,
      value: `${fmt(first["peakTensorMiB"], 1)} -> ${fmt(last["peakTensorMiB"], 1)} MiB`,
      target: "flat in N",
      met: Math.abs(memory["peakTensorGrowthMiB"]) < 1,
    });
    if (live !== undefined) {
      rows.push({
        area: "probe",
        metric: `peak live JS heap (after GC), N=${first["images"]} -> ${last["images"]}`,
        value: `${fmt(first["peakLiveHeapMiB"], 1)} -> ${fmt(last["peakLiveHeapMiB"], 1)} MiB`,
        target: "flat in N",
        met: Math.abs(live) < 8,
      });
    }
    rows.push({
      area: "probe",
      metric: `peak RSS above baseline, N=${first["images"]} -> ${last["images"]}`,
      value: `${fmt(first["peakRssMiB"] - first["baselineRssMiB"], 1)} -> ${fmt(last["peakRssMiB"] - last["baselineRssMiB"], 1)} MiB`,
    });
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
export function ioRows(r: Json): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const line = (kind: "write" | "read", name: string, label: string) => {
    const t = r[kind]?.[name];
    if (t === undefined) return;
    const speedup = t["speedupOverParquetjs"]?.["median"];
    rows.push({
      area: "io",
      metric: `${kind} ${label} (${t["rows"]} rows)`,
      value:
        `${fmt(t["rowsPerSec"], 0)} rows/s` +
        (t["mbPerSec"] > 0 ? `, ${fmt(t["mbPerSec"], 1)} MB/s` : "") +
        (typeof speedup === "number" ? `, ${fmt(speedup, 1)}x parquetjs-lite` : ""),
    });
  };
  for (const name of Object.keys((r["write"] ?? {}) as Json)) line("write", name, IO_LABELS[name] ?? name);
  for (const name of Object.keys((r["read"] ?? {}) as Json)) line("read", name, IO_LABELS[name] ?? name);
  return rows;
}

const DATASET_OF_SHAPE: Record<string, "mnist" | "cifar10"> = { mnist: "mnist", cifar: "cifar10" };

/**
 * The GPU model's assumptions. sustainedFlops: an H100's float32 (non-tensor-core) peak is ~67 TFLOP/s; convolutions
 * with 16-64 channels on 7x7-32x32 maps reach a small fraction, taken as 10 TFLOP/s. secondsPerOp: what each op costs
 * on the host (JS, the tfjs-node binding, a CUDA launch), taken as the measured JS time per op on CPU plus 10 us.
 */
export function gpuAssumptions(training: Json): GpuAssumptions | undefined {
  const census = ((training["breakdown"]?.["ours"] ?? []) as Json[]).filter((b) => b["variant"] === "current" && b["shape"] === "mnist");
  if (census.length < 2) return undefined;
  const fit = linearFit(census.map((b) => b["blocks"]), census.map((b) => b["census"]["opsPerStep"]));
  const jsPerOp = census.reduce((a, b) => a + b["census"]["javascriptMs"] / b["census"]["opsPerStep"], 0) / census.length / 1000;
  return { sustainedFlops: 10e12, secondsPerOp: jsPerOp + 10e-6, opsPerStep: fit };
}

export interface Estimates {
  readonly cpu?: CpuSweepEstimate;
  readonly gpu?: GpuSweepEstimate;
  readonly skipped?: string;
}

export function estimates(training: Json): Estimates {
  const points: ThroughputPoint[] = ((training["throughput"] ?? []) as Json[]).map((t) => ({
    dataset: DATASET_OF_SHAPE[t["shape"]]!,
    L: t["blocks"],
    trainImgPerSec: t["oursImgPerSec"]["median"],
  }));
  const depths = (d: string) => new Set(points.filter((p) => p.dataset === d).map((p) => p.L)).size;
  if (depths("mnist") < 2 || depths("cifar10") < 2) return { skipped: "needs training throughput at two or more depths on both shapes (a full run)" };
  const assumptions = gpuAssumptions(training);
  return { cpu: estimateCpuSweep(points), ...(assumptions === undefined ? {} : { gpu: estimateGpuSweep(assumptions) }) };
}

export function estimateRows(e: Estimates): SummaryRow[] {
  if (e.skipped !== undefined) return [{ area: "estimate", metric: "paper sweep", value: `skipped: ${e.skipped}` }];
  const rows: SummaryRow[] = [];
  if (e.cpu !== undefined) {
    const h = e.cpu.hoursByDataset;
    rows.push({
      area: "estimate",
      metric: "paper sweep on this CPU (76 runs, one at a time)",
      value: `${fmt(e.cpu.totalHours, 0)} h (MNIST ${fmt(h["mnist"]!, 0)} h, CIFAR-10 ${fmt(h["cifar10"]!, 0)} h; longest run ${e.cpu.longestRun.dataset} L=${e.cpu.longestRun.L}: ${fmt(e.cpu.longestRun.hours, 0)} h)`,
    });
  }
  if (e.gpu !== undefined) {
    const a = e.gpu.assumptions;
    rows.push({
      area: "estimate",
      metric: "paper sweep on one GPU (model: max(FLOPs, per-op dispatch) per run)",
      value: `${fmt(e.gpu.totalHours, 1)} h (compute ${fmt(e.gpu.computeHours, 1)} h at ${a.sustainedFlops / 1e12} TFLOP/s, dispatch ${fmt(e.gpu.dispatchHours, 1)} h at ${fmt(a.secondsPerOp * 1e6, 1)} us/op x ${fmt(a.opsPerStep.intercept, 0)}+${fmt(a.opsPerStep.slope, 1)}L ops/step)`,
    });
  }
  return rows;
}

/** The summary as a Markdown table. */
export function summaryTable(rows: ReadonlyArray<SummaryRow>): string {
  const lines = ["| area | measured | value | target |", "|---|---|---|---|"];
  for (const r of rows) {
    const target = r.target === undefined ? "" : `${r.target} ${r.met === true ? "(met)" : r.met === false ? "(NOT met)" : ""}`.trim();
    lines.push(`| ${r.area} | ${r.metric} | ${r.value} | ${target} |`);
  }
  return lines.join("\n");
}

const ROWS: Record<BenchmarkName, (r: Json) => SummaryRow[]> = { planning: planningRows, training: trainingRows, probe: probeRows, io: ioRows };

/** Where each benchmark writes its results, and the arguments that make it write there. */
const outputOf = (name: BenchmarkName, dir: string, quick: boolean): { file: string; args: string[] } => {
  const base = quick ? `${name}-quick` : name;
  const file = path.join(dir, `${base}.json`);
  return { file, args: name === "planning" ? ["--out", file] : ["--results-dir", dir, "--out", base] };
};

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2), ["quick", "only", "results-dir", "summary-only"]);
  const summaryOnly = options.has("summary-only");
  const quick = options.has("quick");
  const only = (options.get("only") ?? BENCHMARKS.join(",")).split(",");
  for (const name of only) if (!(BENCHMARKS as ReadonlyArray<string>).includes(name)) throw new Error(`unknown benchmark '${name}' (${BENCHMARKS.join(", ")})`);
  const dir = path.resolve(options.get("results-dir") ?? path.join(repoRoot, "benchmarks/results"));
  const started = new Date();
  const results: Record<string, Json> = {};
  const runs: Record<string, { seconds: number; exitCode: number | null }> = {};
  for (const name of BENCHMARKS.filter((b) => only.includes(b))) {
    const { file, args } = outputOf(name, dir, quick);
    if (summaryOnly) {
      if (existsSync(file)) results[name] = JSON.parse(readFileSync(file, "utf8")) as Json;
      else console.log(`${name}: no ${file} to summarise`);
      continue;
    }
    const command = ["--import", "tsx", path.join(repoRoot, "benchmarks", `${name}.ts`), ...(quick ? ["--quick"] : FULL_ARGS[name]), ...args];
    console.log(`\n=== ${name}: node ${command.join(" ")}`);
    const t0 = performance.now();
    const child = spawnSync(process.execPath, command, { cwd: repoRoot, stdio: "inherit" });
    runs[name] = { seconds: (performance.now() - t0) / 1000, exitCode: child.status };
    if (child.status !== 0 || !existsSync(file)) {
      console.log(`${name} failed (exit ${child.status}); its rows are left out of the summary`);
      continue;
    }
    results[name] = JSON.parse(readFileSync(file, "utf8")) as Json;
  }
  const rows: SummaryRow[] = BENCHMARKS.flatMap((name) => (results[name] === undefined ? [] : ROWS[name](results[name]!)));
  const estimate = results["training"] === undefined ? undefined : estimates(results["training"]);
  if (estimate !== undefined) rows.push(...estimateRows(estimate));
  const table = summaryTable(rows);
  console.log(`\n=== summary (${quick ? "quick" : "full"} run, load average now ${loadavg().map((x) => x.toFixed(2)).join(" ")})\n\n${table}\n`);
  // A re-summary keeps the record of the run that produced the files.
  const previous = path.join(dir, `${quick ? "bench-quick" : "bench"}.json`);
  const ran = summaryOnly && existsSync(previous) ? (JSON.parse(readFileSync(previous, "utf8")) as Json) : { started: started.toISOString(), runs };
  const file = writeResults(
    quick ? "bench-quick" : "bench",
    { benchmark: "bench", quick, started: ran["started"], runs: ran["runs"], ...(summaryOnly ? { resummarisedAt: started.toISOString() } : {}), summary: rows, estimate, table },
    dir,
  );
  console.log(`wrote ${file}`);
  if (Object.values(runs).some((r) => r.exitCode !== 0)) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main().catch((error: unknown) => {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`); // a bad flag: one line, no stack
    process.exitCode = 2;
  });
}
