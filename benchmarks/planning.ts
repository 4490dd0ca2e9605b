/**
 * Benchmark: the overhead of a fully cached `run all` (nothing to do), how it grows with the DAG, and DVC's
 * `dvc status` / no-op `dvc repro` on an equivalent dvc.yaml.
 *
 *   npx tsx benchmarks/planning.ts [--quick] [--sizes 100,1000,10000|none] [--dvc-sizes 100,1000] [--no-paper]
 *     [--no-processes] [--no-dvc] [--dvc-repro] [--no-startup] [--repeats N] [--process-repeats N] [--budget-ms MS]
 *     [--out NAME] [--results-dir DIR]
 *
 * For each DAG (the paper's topology with trivial stage bodies, and synthetic layered DAGs): populate a throw-away
 * cache once, then time
 *   - in process: loadConfig, buildDag, planDag (the plan), and the executor's pass over the cached nodes, each the
 *     median of repeats (warm: after one untimed round);
 *   - as whole processes: `run all` and `status` through the CLI under tsx (the CLI's own "plan ... (N ms)" line gives
 *     the cold, in-process share of the same runs); for the paper DAG also the real entry point, bin/pipeline.mjs, from
 *     the sources (PIPELINE_FROM_SOURCES=1), from the bundle (dist/, rebuilt first by scripts/build.ts) and through
 *     `npx pipeline`;
 *   - DVC (when installed): `dvc status` and no-op `dvc repro`, interleaved with ours so load drifts hit both.
 * Plus startup floors: node, tsx, effect, the sources and the bundle.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { Effect, Layer } from "effect";
import { Store } from "../cache/service.ts";
import { ArtifactStore } from "../cache/store.ts";
import { loadConfig } from "../pipeline/config.ts";
import type { PipelineDefinition } from "../pipeline/definition.ts";
import { executeDag } from "../pipeline/executor/dag.ts";
import { buildDag, type Dag } from "../pipeline/graph.ts";
import { planCounts, planDag } from "../pipeline/plan.ts";
import { bundleState } from "../bin/bundle-state.mjs";
import { buildCli } from "../scripts/build.ts";
import {
  assertUpToDate,
  dvcCommand,
  dvcEnv,
  dvcStages,
  dvcVersion,
  findDvc,
  reproAll,
  siteCacheDirOf,
  writeDvcProject,
  writeUpToDateState,
  type MirrorNode,
} from "./lib/dvc.ts";
import { paperShapedPipeline } from "./lib/paper-shaped.ts";
import {
  formatMs,
  countOption,
  parseIntList,
  parseOptions,
  repoRoot,
  runCommand,
  timingOf,
  writeResults,
  type Command,
  type Timing,
} from "./lib/measure.ts";
import { layeredPipeline, type LayeredConfig } from "./lib/trivial-stages.ts";
import type { PaperConfig } from "../stages/config.ts";

export interface PlanningBenchmarkOptions {
  /** Tiny sizes and few repeats (CI smoke test): layered 30 and 100 nodes, the paper DAG under the smoke preset. */
  readonly quick?: boolean;
  /** Node counts of the synthetic layered DAGs (default 100, 1,000, 10,000). */
  readonly layeredSizes?: ReadonlyArray<number>;
  /** Preset of the paper-shaped DAG (default "paper": the full sweep; "smoke" in quick mode). */
  readonly paperPreset?: string;
  /** Include the paper-shaped DAG (default true). */
  readonly paper?: boolean;
  /** Timed in-process rounds per DAG (default 15; fewer for big DAGs, see `inProcessBudgetMs`). */
  readonly repeats?: number;
  /** Timed whole-process runs per command (default 9; fewer for big DAGs). */
  readonly processRepeats?: number;
  /** Rough time budget per DAG for the in-process rounds (default 20 s); whole-process commands get three times it. */
  readonly budgetMs?: number;
  /** "auto": DVC when found (benchmarks/.venv/bin/dvc, $DVC_BIN or PATH), else a clear skip; "skip": never. */
  readonly dvc?: "auto" | "skip";
  /** Layered sizes also mirrored in DVC (default those up to 1,000). The paper DAG always is. */
  readonly dvcSizes?: ReadonlyArray<number>;
  /** How the DVC project is made up to date: "lockfile" (default: written as `dvc repro` would, seconds) or "repro". */
  readonly dvcSetup?: "lockfile" | "repro";
  /** Startup floors (default true; false in quick mode). */
  readonly startup?: boolean;
  /** Whole-process timings of our CLI (default true). */
  readonly processes?: boolean;
  /** Parent of the throw-away caches and projects (default: a fresh temp dir, removed afterwards). */
  readonly workDir?: string;
  readonly log?: (line: string) => void;
}

/** In-process phases of a no-op `run all`, warm (medians after one untimed round). */
export interface InProcessResult {
  readonly loadConfig: Timing;
  readonly buildDag: Timing;
  readonly planDag: Timing;
  /** loadConfig + buildDag + planDag: what the CLI reports as "plan ... (N ms)". */
  readonly plan: Timing;
  readonly planPerNodeMs: number;
  /** The executor's pass over the fully cached DAG (it looks every node up again; a no-op `run all` skips it). */
  readonly executeCached: Timing;
}

export interface ProcessResult {
  /** `run all` through the CLI under tsx (benchmarks/lib/bench-cli.ts), spawn to exit. */
  readonly runAll: Timing;
  readonly status: Timing;
  /** Medians of what the CLI printed in those `run all` runs: cold plan time, and plan + executor time. */
  readonly reportedPlanMs: number;
  readonly reportedRunMs: number;
  /** Paper DAG only (its keys match the real pipeline's): the real entry point's no-op `run all --preset ...`. */
  readonly realCli?: RealCliResult;
}

export interface RealCliResult {
  /** `PIPELINE_FROM_SOURCES=1 node bin/pipeline.mjs run all ...`: the sources through tsx. */
  readonly sources: Timing;
  /** `node bin/pipeline.mjs run all ...` with a current dist/ bundle. */
  readonly bundle: Timing;
  /** `npx pipeline run all ...`: the bundle behind npm's own start-up. */
  readonly npx: Timing;
  /** The CLI's cold "plan ... (N ms)" in the bundle runs. */
  readonly bundleReportedPlanMs: number;
  /** scripts/build.ts's time for the bundle measured. */
  readonly buildMs: number;
  /** False when a source changed during the runs, so some "bundle" runs fell back to the sources. */
  readonly bundleStayedCurrent: boolean;
}

export interface DvcDagResult {
  readonly setup: "lockfile" | "repro";
  readonly setupMs: number;
  readonly stages: number;
  readonly status: Timing;
  readonly repro: Timing;
}

export interface DagResult {
  readonly name: string;
  readonly nodes: number;
  readonly edges: number;
  readonly artifacts: number;
  readonly populateMs: number;
  readonly inProcess: InProcessResult;
  readonly process?: ProcessResult;
  readonly dvc?: DvcDagResult | { readonly skipped: string };
  /** DVC time / our time, whole processes, same node count (ours under tsx; for the paper DAG also the bundled bin). */
  readonly ratios?: {
    readonly dvcStatusOverOurStatus: number;
    readonly dvcReproOverOurRunAll: number;
    readonly dvcStatusOverBundleRunAll?: number;
    readonly dvcReproOverBundleRunAll?: number;
  };
}

export interface StartupResult {
  /** Whole-process medians by label. */
  readonly commands: ReadonlyArray<{ readonly label: string; readonly command: string; readonly timing: Timing }>;
  readonly bundles: ReadonlyArray<{
    readonly label: string;
    readonly bytes: number;
    readonly buildMs: number;
    readonly files: number;
  }>;
  /** False when a source changed during the runs, so some runs of bin/pipeline.mjs fell back to the sources. */
  readonly bundleStayedCurrent: boolean;
}

export interface PlanningResult {
  readonly benchmark: "planning";
  readonly generatedAt: string;
  readonly machine: {
    readonly node: string;
    readonly cpus: number;
    readonly cpuModel: string;
    readonly loadAvgStart: ReadonlyArray<number>;
    readonly loadAvgEnd: ReadonlyArray<number>;
  };
  readonly settings: {
    readonly quick: boolean;
    readonly repeats: number;
    readonly processRepeats: number;
    readonly dvc: string;
  };
  readonly dags: ReadonlyArray<DagResult>;
  readonly startup?: StartupResult;
}

/** A DAG to benchmark: a definition and how to configure it. */
interface DagCase<C> {
  readonly name: string;
  readonly definition: PipelineDefinition<C, never>;
  readonly sources: { readonly preset?: string; readonly assignments?: ReadonlyArray<string> };
  /** CLI arguments selecting the same configuration, and the bench-cli definition name. */
  readonly cliArgs: ReadonlyArray<string>;
  readonly cliName: "paper" | "layered";
  readonly mirrorInDvc: boolean;
}

const TOOL = { name: "planning-benchmark", version: "1" };

const runCached = async <C>(dag: Dag<C, never>, store: ArtifactStore) => {
  const results = await Effect.runPromise(
    executeDag(dag, Layer.empty, { jobs: 2, gpus: 1, tool: TOOL }).pipe(Effect.provide(Store.from(store))),
  );
  const notCached = results.filter((r) => r.status !== "cached");
  if (notCached.length > 0)
    throw new Error(`expected a fully cached DAG, but ${notCached[0]!.id} is ${notCached[0]!.status}`);
};

/** The graph as DVC should mirror it: per node its artifacts, the non-volatile ones, its distinct upstream nodes. */
export const mirrorOf = <C, R>(dag: Dag<C, R>): MirrorNode[] =>
  dag.order.map((id) => {
    const node = dag.nodes.get(id)!;
    const outputs = Object.entries(node.stage.outputs);
    return {
      id,
      outputs: outputs.map(([name]) => name),
      keyedOutputs: outputs
        .filter(([, spec]) => !(spec.kind === "table" && spec.volatile === true))
        .map(([name]) => name),
      deps: [...new Set(Object.values(node.deps))],
    };
  });

const edgeCount = <C, R>(dag: Dag<C, R>): number =>
  [...dag.nodes.values()].reduce((sum, n) => sum + new Set(Object.values(n.deps)).size, 0);

/** Times whole processes round-robin (so a load spike hits every command alike); one untimed warm-up round each. */
const timeInterleaved = (
  commands: ReadonlyArray<Command>,
  repeats: number,
  warmup: number,
): { timings: Timing[]; outputs: string[][] } => {
  const samples = commands.map(() => [] as number[]);
  const outputs = commands.map(() => [] as string[]);
  for (let round = -warmup; round < repeats; round++) {
    commands.forEach((command, i) => {
      const t0 = performance.now();
      const output = runCommand(command);
      const ms = performance.now() - t0;
      if (round >= 0) {
        samples[i]!.push(ms);
        outputs[i]!.push(output);
      }
    });
  }
  return { timings: samples.map(timingOf), outputs };
};

const medianOf = (xs: ReadonlyArray<number>) => timingOf(xs).medianMs;

/** "plan all: 164 nodes, 164 cached, ... (175 ms)" and "summary: ... in 0.35 s" from the CLI's stderr. */
export const parseCliTimes = (output: string): { planMs: number; runMs: number } => {
  const plan = /plan \S+: (\d+) nodes, (\d+) cached, 0 to run, 0 pending \((\d+) ms\)/.exec(output);
  const summary = /summary: 0 ran, (\d+) cached, 0 failed, 0 skipped in ([\d.]+) s/.exec(output);
  if (plan === null || summary === null || plan[1] !== plan[2])
    throw new Error(`not a fully cached run:\n${output.slice(0, 1500)}`);
  return { planMs: Number(plan[3]), runMs: Number(summary[2]) * 1000 };
};

const tsxCommand = (args: ReadonlyArray<string>): Command => ({
  file: process.execPath,
  args: ["--import", "tsx", ...args],
  cwd: repoRoot,
});

/** The real entry point, bin/pipeline.mjs, made to run the sources (through tsx) or the dist/ bundle. */
const binCommand = (from: "sources" | "bundle", args: ReadonlyArray<string>): Command => ({
  file: process.execPath,
  args: ["bin/pipeline.mjs", ...args],
  cwd: repoRoot,
  env: { ...process.env, PIPELINE_FROM_SOURCES: from === "sources" ? "1" : "" },
});

/** `npx pipeline ...`: npm's own start-up, then bin/pipeline.mjs (the bundle). */
const npxCommand = (args: ReadonlyArray<string>): Command => ({
  file: "npx",
  args: ["pipeline", ...args],
  cwd: repoRoot,
  env: { ...process.env, PIPELINE_FROM_SOURCES: "" },
});

const repoRootUrl = pathToFileURL(`${repoRoot}/`);

/** Builds dist/ as `npm run build` does and checks that bin/pipeline.mjs will run it. */
const prepareBundle = async (
  log: (line: string) => void,
): Promise<{
  readonly buildMs: number;
  readonly entryBytes: number;
  readonly totalBytes: number;
  readonly files: number;
}> => {
  let built = await buildCli();
  // Someone editing a source during the build makes it stale at once: build again (twice at most).
  for (let attempt = 1; (await bundleState(repoRootUrl)) !== "current"; attempt++) {
    if (attempt >= 3) throw new Error("dist/ goes stale as soon as it is built: sources keep changing; rerun later");
    built = await buildCli();
  }
  const entryBytes = built.outputs.find((o) => o.file === built.entry)!.bytes;
  const totalBytes = built.outputs.reduce((sum, o) => sum + o.bytes, 0);
  const files = Object.values(built.inputsByArea).reduce((a, b) => a + b, 0);
  log(
    `bundle: dist/pipeline.mjs ${(entryBytes / 1024).toFixed(0)} KiB (${(totalBytes / 1024).toFixed(0)} KiB with its lazily loaded chunks) from ${files} files, built in ${formatMs(built.buildMs)}`,
  );
  return { buildMs: built.buildMs, entryBytes, totalBytes, files };
};

/** Whether every bin/pipeline.mjs run since prepareBundle could have used the bundle (no source changed meanwhile). */
const bundleStillCurrent = async (log: (line: string) => void): Promise<boolean> => {
  const current = (await bundleState(repoRootUrl)) === "current";
  if (!current)
    log("  WARNING: a source changed during the runs, so some bin/pipeline.mjs runs fell back to the sources");
  return current;
};

/** Runs the benchmark, prints tables through `log`, and returns JSON-able results. */
export const runPlanningBenchmark = async (options: PlanningBenchmarkOptions = {}): Promise<PlanningResult> => {
  const quick = options.quick ?? false;
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const layeredSizes = options.layeredSizes ?? (quick ? [30, 100] : [100, 1000, 10_000]);
  const dvcSizes = new Set(options.dvcSizes ?? layeredSizes.filter((n) => n <= 1000));
  const repeats = options.repeats ?? (quick ? 3 : 15);
  const processRepeats = options.processRepeats ?? (quick ? 1 : 9);
  const budgetMs = options.budgetMs ?? (quick ? 2000 : 20_000);
  const warmup = quick ? 0 : 1;
  const loadAvgStart = loadavg();
  const ownWorkDir = options.workDir === undefined;
  const workDir = options.workDir ?? mkdtempSync(path.join(tmpdir(), "planning-bench-"));
  mkdirSync(workDir, { recursive: true });

  let dvc: string | undefined;
  let dvcNote: string;
  if (options.dvc === "skip") dvcNote = "dvc: skip";
  else {
    dvc = findDvc(repoRoot);
    dvcNote =
      dvc === undefined
        ? "skipped: dvc not found (python3 -m venv benchmarks/.venv && benchmarks/.venv/bin/pip install dvc, or set DVC_BIN)"
        : `dvc ${dvcVersion(dvc)} (${dvc}), setup ${options.dvcSetup ?? "lockfile"}`;
  }
  log(
    `planning benchmark: node ${process.version}, ${cpus().length} CPUs, load ${loadAvgStart.map((l) => l.toFixed(1)).join(" ")}; DVC ${dvcNote}`,
  );

  // Each case is closed over its own configuration type.
  const cases: Array<{ readonly paperPreset?: string; readonly run: (ctx: DagRunContext) => Promise<DagResult> }> = [];
  if (options.paper ?? true) {
    const preset = options.paperPreset ?? (quick ? "smoke" : "paper");
    const c: DagCase<PaperConfig> = {
      name: `paper (preset ${preset})`,
      definition: paperShapedPipeline,
      sources: { preset },
      cliArgs: ["--preset", preset],
      cliName: "paper",
      mirrorInDvc: true,
    };
    cases.push({ paperPreset: preset, run: (ctx) => benchmarkDag(c, ctx) });
  }
  for (const n of layeredSizes) {
    const c: DagCase<LayeredConfig> = {
      name: `layered ${n}`,
      definition: layeredPipeline,
      sources: { assignments: [`nodes=${n}`] },
      cliArgs: ["--set", `nodes=${n}`],
      cliName: "layered",
      mirrorInDvc: dvcSizes.has(n),
    };
    cases.push({ run: (ctx) => benchmarkDag(c, ctx) });
  }

  const startupWanted = options.startup ?? !quick;
  const processes = options.processes ?? true;
  const bundle = (processes && (options.paper ?? true)) || startupWanted ? await prepareBundle(log) : undefined;

  const dags: DagResult[] = [];
  let paperCacheDir: string | undefined;
  let paperPreset: string | undefined;
  try {
    for (const c of cases) {
      const cacheDir = path.join(workDir, `cache-${dags.length}`);
      const dvcSetup = options.dvcSetup ?? "lockfile";
      dags.push(
        await c.run({
          cacheDir,
          workDir,
          repeats,
          processRepeats,
          budgetMs,
          warmup,
          dvc,
          dvcNote,
          dvcSetup,
          processes,
          bundleBuildMs: bundle?.buildMs,
          log,
        }),
      );
      if (c.paperPreset !== undefined) {
        paperCacheDir = cacheDir;
        paperPreset = c.paperPreset;
      }
    }
    printDagTable(dags, log);
    let startup: StartupResult | undefined;
    if (startupWanted && bundle !== undefined && paperCacheDir !== undefined && paperPreset !== undefined) {
      startup = await benchmarkStartup({
        workDir,
        paperCacheDir,
        paperPreset,
        repeats: processRepeats,
        warmup,
        dvc,
        bundle,
        log,
      });
    }
    return {
      benchmark: "planning",
      generatedAt: new Date().toISOString(),
      machine: {
        node: process.version,
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? "unknown",
        loadAvgStart,
        loadAvgEnd: loadavg(),
      },
      settings: { quick, repeats, processRepeats, dvc: dvcNote },
      dags,
      ...(startup === undefined ? {} : { startup }),
    };
  } finally {
    if (ownWorkDir) rmSync(workDir, { recursive: true, force: true });
  }
};

interface DagRunContext {
  readonly cacheDir: string;
  readonly workDir: string;
  readonly repeats: number;
  readonly processRepeats: number;
  readonly budgetMs: number;
  readonly warmup: number;
  readonly dvc: string | undefined;
  /** Why DVC is skipped, or its version and setup. */
  readonly dvcNote: string;
  readonly dvcSetup: "lockfile" | "repro";
  readonly processes: boolean;
  /** Build time of dist/ when it was built for this run (the paper DAG's real-CLI timings need it). */
  readonly bundleBuildMs: number | undefined;
  readonly log: (line: string) => void;
}

const benchmarkDag = async <C>(c: DagCase<C>, ctx: DagRunContext): Promise<DagResult> => {
  const { definition } = c;
  const { config } = loadConfig(definition, c.sources);
  const dag = buildDag(definition.stages, config, "all");
  const nodes = dag.order.length;
  ctx.log(`\n${c.name}: ${nodes} nodes, ${edgeCount(dag)} edges; populating ${ctx.cacheDir}`);
  const t0 = performance.now();
  const populated = await Effect.runPromise(
    executeDag(dag, Layer.empty, { jobs: 4, gpus: 1, tool: TOOL }).pipe(
      Effect.provide(Store.from(await ArtifactStore.open(ctx.cacheDir))),
    ),
  );
  const populateMs = performance.now() - t0;
  const failed = populated.find((r) => r.status !== "ran");
  if (failed !== undefined)
    throw new Error(`populating ${c.name}: ${failed.id} ${failed.status}: ${failed.error ?? failed.reason ?? ""}`);
  const artifacts = [...dag.nodes.values()].reduce((s, n) => s + Object.keys(n.stage.outputs).length, 0);

  const inProcess = await timeInProcess(c, nodes, ctx);
  ctx.log(
    `  in process (warm): plan ${formatMs(inProcess.plan.medianMs)} (${inProcess.planPerNodeMs.toFixed(3)} ms/node: config ${formatMs(inProcess.loadConfig.medianMs)}, ` +
      `dag ${formatMs(inProcess.buildDag.medianMs)}, planDag ${formatMs(inProcess.planDag.medianMs)}), executor over cached ${formatMs(inProcess.executeCached.medianMs)}`,
  );

  let processResult: ProcessResult | undefined;
  let dvcResult: DvcDagResult | { skipped: string } | undefined;
  let ratios: DagResult["ratios"];
  const commands: Command[] = [];
  const base = ["--cache-dir", ctx.cacheDir, ...c.cliArgs];
  if (ctx.processes) {
    commands.push(tsxCommand(["benchmarks/lib/bench-cli.ts", c.cliName, "run", "all", ...base]));
    commands.push(tsxCommand(["benchmarks/lib/bench-cli.ts", c.cliName, "status", ...base]));
    if (c.cliName === "paper" && ctx.bundleBuildMs !== undefined) {
      commands.push(
        binCommand("sources", ["run", "all", ...base]),
        binCommand("bundle", ["run", "all", ...base]),
        npxCommand(["run", "all", ...base]),
      );
    }
  }
  let dvcProject: string | undefined;
  let dvcSetup: { readonly setupMs: number; readonly stages: number } | undefined;
  if (!c.mirrorInDvc) dvcResult = { skipped: "size not in dvcSizes" };
  else if (ctx.dvc === undefined) dvcResult = { skipped: ctx.dvcNote };
  else {
    dvcProject = path.join(ctx.workDir, `dvc-${path.basename(ctx.cacheDir)}`);
    const stages = dvcStages(mirrorOf(dag));
    const s0 = performance.now();
    writeDvcProject(ctx.dvc, dvcProject, stages);
    if (ctx.dvcSetup === "repro") reproAll(ctx.dvc, dvcProject);
    else writeUpToDateState(dvcProject, stages);
    // Also fills DVC's stat cache, as a first status after `dvc repro` would find it.
    assertUpToDate(ctx.dvc, dvcProject);
    dvcSetup = { setupMs: performance.now() - s0, stages: stages.length };
    commands.push(dvcCommand(ctx.dvc, dvcProject, ["status"]), dvcCommand(ctx.dvc, dvcProject, ["repro"]));
  }
  if (commands.length > 0) {
    // With warm-up, the untimed round also sizes the repeats to the budget (10,000 nodes take seconds per process).
    let repeats = ctx.processRepeats;
    if (ctx.warmup > 0) {
      const probe = performance.now();
      for (const command of commands) runCommand(command);
      const perCommandMs = (performance.now() - probe) / commands.length;
      repeats = Math.min(ctx.processRepeats, Math.max(3, Math.floor((3 * ctx.budgetMs) / perCommandMs)));
    }
    const { timings, outputs } = timeInterleaved(commands, repeats, Math.max(0, ctx.warmup - 1));
    let i = 0;
    if (ctx.processes) {
      const runAll = timings[i]!;
      const reported = outputs[i++]!.map(parseCliTimes);
      const status = timings[i++]!;
      let realCli: RealCliResult | undefined;
      if (c.cliName === "paper" && ctx.bundleBuildMs !== undefined) {
        for (const output of [...outputs[i]!, ...outputs[i + 2]!]) parseCliTimes(output); // every run found all cached
        const bundleReported = outputs[i + 1]!.map(parseCliTimes);
        realCli = {
          sources: timings[i]!,
          bundle: timings[i + 1]!,
          npx: timings[i + 2]!,
          bundleReportedPlanMs: medianOf(bundleReported.map((r) => r.planMs)),
          buildMs: ctx.bundleBuildMs,
          bundleStayedCurrent: await bundleStillCurrent(ctx.log),
        };
        i += 3;
      }
      processResult = {
        runAll,
        status,
        reportedPlanMs: medianOf(reported.map((r) => r.planMs)),
        reportedRunMs: medianOf(reported.map((r) => r.runMs)),
        ...(realCli === undefined ? {} : { realCli }),
      };
      ctx.log(
        `  whole process (tsx, ${runAll.runs} runs): run all ${formatMs(runAll.medianMs)} (of which plan ${formatMs(processResult.reportedPlanMs)}, ` +
          `plan + executor ${formatMs(processResult.reportedRunMs)}), status ${formatMs(status.medianMs)}`,
      );
      if (realCli !== undefined) {
        ctx.log(
          `  bin/pipeline.mjs run all: sources ${formatMs(realCli.sources.medianMs)}, bundle ${formatMs(realCli.bundle.medianMs)} ` +
            `(CLI plan ${formatMs(realCli.bundleReportedPlanMs)}), npx pipeline ${formatMs(realCli.npx.medianMs)}`,
        );
      }
    }
    if (dvcSetup !== undefined) {
      const status = timings[i++]!;
      const repro = timings[i++]!;
      for (const output of outputs[i - 1]!) {
        if (/Running stage/.test(output)) throw new Error(`no-op dvc repro ran a stage:\n${output.slice(0, 1500)}`);
      }
      dvcResult = { setup: ctx.dvcSetup, ...dvcSetup, status, repro };
      ctx.log(
        `  dvc (${dvcSetup.stages} stages, set up by ${ctx.dvcSetup} in ${formatMs(dvcSetup.setupMs)}): status ${formatMs(status.medianMs)}, no-op repro ${formatMs(repro.medianMs)}`,
      );
      if (processResult !== undefined) {
        const bundleRunAll = processResult.realCli?.bundle.medianMs;
        ratios = {
          dvcStatusOverOurStatus: status.medianMs / processResult.status.medianMs,
          dvcReproOverOurRunAll: repro.medianMs / processResult.runAll.medianMs,
          ...(bundleRunAll === undefined
            ? {}
            : {
                dvcStatusOverBundleRunAll: status.medianMs / bundleRunAll,
                dvcReproOverBundleRunAll: repro.medianMs / bundleRunAll,
              }),
        };
        if (bundleRunAll !== undefined) {
          ctx.log(
            `  dvc status / our bundled no-op run all: ${ratios.dvcStatusOverBundleRunAll!.toFixed(2)}x; no-op dvc repro / it: ${ratios.dvcReproOverBundleRunAll!.toFixed(2)}x`,
          );
        }
      }
    }
  }
  if (dvcProject !== undefined) {
    rmSync(dvcProject, { recursive: true, force: true });
    rmSync(siteCacheDirOf(dvcProject), { recursive: true, force: true });
  }
  return {
    name: c.name,
    nodes,
    edges: edgeCount(dag),
    artifacts,
    populateMs,
    inProcess,
    ...(processResult === undefined ? {} : { process: processResult }),
    ...(dvcResult === undefined ? {} : { dvc: dvcResult }),
    ...(ratios === undefined ? {} : { ratios }),
  };
};

/** The warm in-process phases, each round on a freshly opened store (as each CLI process opens its own). */
const timeInProcess = async <C>(c: DagCase<C>, nodes: number, ctx: DagRunContext): Promise<InProcessResult> => {
  const samples = {
    loadConfig: [] as number[],
    buildDag: [] as number[],
    planDag: [] as number[],
    plan: [] as number[],
    executeCached: [] as number[],
  };
  const started = performance.now();
  for (let round = -1; round < ctx.repeats; round++) {
    const t0 = performance.now();
    const { config } = loadConfig(c.definition, c.sources);
    const t1 = performance.now();
    const dag = buildDag(c.definition.stages, config, "all");
    const t2 = performance.now();
    const store = await ArtifactStore.open(ctx.cacheDir);
    const t3 = performance.now();
    const plan = await Effect.runPromise(planDag(dag).pipe(Effect.provide(Store.from(store))));
    const t4 = performance.now();
    const counts = planCounts(plan);
    if (counts.cached !== dag.order.length)
      throw new Error(`${c.name}: expected every node cached, plan says ${JSON.stringify(counts)}`);
    await runCached(dag, store);
    const t5 = performance.now();
    if (round < 0) continue; // warm-up round
    samples.loadConfig.push(t1 - t0);
    samples.buildDag.push(t2 - t1);
    samples.planDag.push(t4 - t3);
    samples.plan.push(t2 - t0 + (t4 - t3));
    samples.executeCached.push(t5 - t4);
    if (round >= 2 && performance.now() - started > ctx.budgetMs) break; // big DAGs: at least 3 rounds, then the budget
  }
  const plan = timingOf(samples.plan);
  return {
    loadConfig: timingOf(samples.loadConfig),
    buildDag: timingOf(samples.buildDag),
    planDag: timingOf(samples.planDag),
    plan,
    planPerNodeMs: plan.medianMs / nodes,
    executeCached: timingOf(samples.executeCached),
  };
};

const pad = (s: string, n: number) => s.padStart(n);

const printDagTable = (dags: ReadonlyArray<DagResult>, log: (line: string) => void) => {
  log("\nFully cached `run all` (medians; in-process warm, whole process = spawn to exit)");
  const head = [
    "DAG",
    "nodes",
    "plan",
    "ms/node",
    "executor",
    "tsx run all",
    "tsx status",
    "bundle run",
    "dvc status",
    "dvc repro",
    "dvc st/tsx",
    "dvc st/bundle",
  ];
  const widths = [20, 6, 9, 8, 9, 12, 11, 11, 10, 10, 10, 13];
  log(head.map((h, i) => (i === 0 ? h.padEnd(widths[i]!) : pad(h, widths[i]!))).join(" "));
  for (const d of dags) {
    const p = d.inProcess;
    const dv = d.dvc !== undefined && "setup" in d.dvc ? d.dvc : undefined;
    const cells = [
      d.name.padEnd(widths[0]!),
      String(d.nodes),
      formatMs(p.plan.medianMs),
      p.planPerNodeMs.toFixed(3),
      formatMs(p.executeCached.medianMs),
      d.process ? formatMs(d.process.runAll.medianMs) : "-",
      d.process ? formatMs(d.process.status.medianMs) : "-",
      d.process?.realCli ? formatMs(d.process.realCli.bundle.medianMs) : "-",
      dv ? formatMs(dv.status.medianMs) : "-",
      dv ? formatMs(dv.repro.medianMs) : "-",
      d.ratios ? `${d.ratios.dvcStatusOverOurStatus.toFixed(2)}x` : "-",
      d.ratios?.dvcStatusOverBundleRunAll !== undefined ? `${d.ratios.dvcStatusOverBundleRunAll.toFixed(2)}x` : "-",
    ];
    log(cells.map((cell, i) => (i === 0 ? cell : pad(cell, widths[i]!))).join(" "));
  }
  log(
    "  tsx: the CLI from the sources (benchmarks/lib/bench-cli.ts); bundle run: bin/pipeline.mjs run all with dist/ current (paper DAG only)",
  );
};

interface StartupContext {
  readonly workDir: string;
  readonly paperCacheDir: string;
  readonly paperPreset: string;
  readonly repeats: number;
  readonly warmup: number;
  readonly dvc: string | undefined;
  /** dist/ as prepareBundle built it. */
  readonly bundle: {
    readonly buildMs: number;
    readonly entryBytes: number;
    readonly totalBytes: number;
    readonly files: number;
  };
  readonly log: (line: string) => void;
}

/** The engine alone (cli + effect + cache) over the synthetic layered pipeline: start-up without any stage. */
const ENGINE_ONLY_ENTRY = `import { main } from "./pipeline/cli.ts";
import { layeredPipeline } from "./benchmarks/lib/trivial-stages.ts";
process.exitCode = await main(layeredPipeline, process.argv.slice(2));
`;

/** Startup floors and the no-op run of the paper DAG from the sources (tsx) and from the bundle. */
const benchmarkStartup = async (ctx: StartupContext): Promise<StartupResult> => {
  const bundleRoot = path.join(ctx.workDir, "bundle");
  mkdirSync(bundleRoot, { recursive: true });
  // Packages left out of a bundle resolve from node_modules next to it, as they do from <repo>/dist.
  symlinkSync(path.join(repoRoot, "node_modules"), path.join(bundleRoot, "node_modules"), "dir");
  writeFileSync(path.join(bundleRoot, "package.json"), `{ "type": "module" }\n`);
  const engine = await buildCli({ outDir: path.join(bundleRoot, "dist"), entrySource: ENGINE_ONLY_ENTRY });
  const engineBytes = engine.outputs.find((o) => o.file === engine.entry)!.bytes;
  const bundles = [
    {
      label: "dist/pipeline.mjs (npm run build)",
      bytes: ctx.bundle.entryBytes,
      buildMs: ctx.bundle.buildMs,
      files: ctx.bundle.files,
    },
    {
      label: "engine only (no stages)",
      bytes: engineBytes,
      buildMs: engine.buildMs,
      files: Object.values(engine.inputsByArea).reduce((a, b) => a + b, 0),
    },
  ];
  const run = ["run", "all", "--preset", ctx.paperPreset, "--cache-dir", ctx.paperCacheDir];
  const node = (label: string, args: ReadonlyArray<string>): { label: string; command: Command } => ({
    label,
    command: { file: process.execPath, args, cwd: repoRoot },
  });
  const entries = [
    node("node -e 0", ["-e", "0"]),
    node("node --import tsx -e 0", ["--import", "tsx", "-e", "0"]),
    node("import effect (barrel), no tsx", ["--input-type=module", "-e", "await import('effect')"]),
    node("tsx: import pipeline/cli.ts (engine)", [
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      "await import('./pipeline/cli.ts')",
    ]),
    node("tsx: import stages/index.ts (stages, science)", [
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      "await import('./stages/index.ts')",
    ]),
    node("import vega, vega-lite, @resvg/resvg-js", [
      "--input-type=module",
      "-e",
      "await import('vega'); await import('vega-lite'); await import('@resvg/resvg-js')",
    ]),
    { label: "sources: bin/pipeline.mjs --help", command: binCommand("sources", ["--help"]) },
    { label: "sources: bin/pipeline.mjs run all (no-op)", command: binCommand("sources", run) },
    { label: "bundle: bin/pipeline.mjs --help", command: binCommand("bundle", ["--help"]) },
    { label: "bundle: bin/pipeline.mjs run all (no-op)", command: binCommand("bundle", run) },
    { label: "bundle: npx pipeline --help", command: npxCommand(["--help"]) },
    { label: "bundle: npx pipeline run all (no-op)", command: npxCommand(run) },
    node("engine-only bundle --help", [engine.entry, "--help"]),
  ];
  if (ctx.dvc !== undefined)
    entries.push({
      label: "dvc --version",
      command: { file: ctx.dvc, args: ["--version"], cwd: ctx.workDir, env: dvcEnv() },
    });
  const { timings } = timeInterleaved(
    entries.map((e) => e.command),
    ctx.repeats,
    ctx.warmup,
  );
  const bundleStayedCurrent = await bundleStillCurrent(ctx.log);
  const commands = entries.map((e, i) => ({
    label: e.label,
    command: [path.basename(e.command.file), ...e.command.args].join(" "),
    timing: timings[i]!,
  }));
  ctx.log("\nProcess startup (medians, spawn to exit; the paper DAG's cache for `run all`)");
  for (const c of commands)
    ctx.log(
      `  ${c.label.padEnd(48)} ${pad(formatMs(c.timing.medianMs), 9)}  (min ${formatMs(c.timing.minMs)}, ${c.timing.runs} runs)`,
    );
  for (const b of bundles)
    ctx.log(
      `  bundle ${b.label}: ${(b.bytes / 1024).toFixed(0)} KiB at start-up, from ${b.files} files, built in ${formatMs(b.buildMs)}`,
    );
  return { commands, bundles, bundleStayedCurrent };
};

/** CLI: prints the tables and writes benchmarks/results/<out>.json (default planning, planning-quick with --quick). */
const cli = async (argv: ReadonlyArray<string>): Promise<void> => {
  const options = parseOptions(argv, [
    "quick",
    "sizes",
    "dvc-sizes",
    "no-paper",
    "no-processes",
    "no-dvc",
    "dvc-repro",
    "no-startup",
    "repeats",
    "process-repeats",
    "budget-ms",
    "out",
    "results-dir",
  ]);
  const sizes = (name: string) => {
    const raw = options.get(name);
    return raw === undefined ? undefined : raw === "none" ? [] : parseIntList(raw);
  };
  const repeats = countOption(options, "repeats");
  const processRepeats = countOption(options, "process-repeats");
  const budgetMs = countOption(options, "budget-ms");
  const quick = options.has("quick");
  const layeredSizes = sizes("sizes");
  const dvcSizes = sizes("dvc-sizes");
  const result = await runPlanningBenchmark({
    quick,
    ...(layeredSizes === undefined ? {} : { layeredSizes }),
    ...(dvcSizes === undefined ? {} : { dvcSizes }),
    dvc: options.has("no-dvc") ? "skip" : "auto",
    dvcSetup: options.has("dvc-repro") ? "repro" : "lockfile",
    ...(options.has("no-startup") ? { startup: false } : {}),
    ...(options.has("no-paper") ? { paper: false } : {}),
    ...(options.has("no-processes") ? { processes: false } : {}),
    ...(repeats === undefined ? {} : { repeats }),
    ...(processRepeats === undefined ? {} : { processRepeats }),
    ...(budgetMs === undefined ? {} : { budgetMs }),
  });
  const out = writeResults(
    options.get("out") ?? (quick ? "planning-quick" : "planning"),
    result,
    options.get("results-dir"),
  );
  process.stdout.write(`\nwrote ${path.relative(process.cwd(), out)}\n`);
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await cli(process.argv.slice(2));
}
