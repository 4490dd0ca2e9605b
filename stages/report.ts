/**
 * report(dataset, eps): the paper's Figures 1-7 and the training curves (each as SVG and PNG), the comparison with
 * the paper and the tables in report.md (figures by relative PNG name, so a copy of the node's files renders on
 * GitHub) and a self-contained report.html, from the aggregate, fit and stop-rule tables and every train node's
 * configuration and per-epoch metrics. It also writes the tables it was made from, so a copy of its files (`--out`)
 * lets anyone check the numbers, and scripts/readme-report.ts regenerate the README's block, without the cache.
 */
import { writeFile } from "node:fs/promises";
import { Effect, Schema } from "effect";
import { DATASETS } from "../science/data/datasets.ts";
import type { TrainRun } from "../science/report/document.ts";
import { FIGURE_NAMES } from "../science/report/figures.ts";
import { PAPER_MNIST } from "../science/report/paper.ts";
// Types only: science/report/report.ts loads vega, vega-lite and the native resvg, so it is imported when a report
// node runs, not by every command that merely lists the stages.
import type { REPORT_DOCUMENTS, ReportInput } from "../science/report/report.ts";
import { attemptPromise, defineStage, dependOn, file, type FileOutput, type OutputSpec } from "../pipeline/stage.ts";
import { Int32, table, volatileTable } from "../pipeline/table.ts";
import { SectionSeedSummaryRowSchema, BlockSeedSummaryRowSchema } from "../science/analysis/aggregate.ts";
import { FitRowSchema } from "../science/analysis/fit.ts";
import { StopRuleRowSchema } from "../science/analysis/stopRule.ts";
import { aggregate } from "./aggregate.ts";
import { DatasetName, runsOf, trainParamsFor, type PaperConfig } from "./config.ts";
import { exponentsSummary, fit } from "./fit.ts";
import { stopRule, stopRuleSummary } from "./stop-rule.ts";
import { EpochRowSchema, TimingRowSchema, train, trainInputName } from "./train.ts";

const DOCUMENT_DESCRIPTIONS: Record<(typeof REPORT_DOCUMENTS)[number], string> = {
  "report.md": "the report as GitHub markdown; figures by relative PNG file name",
  "report.html": "the report as one self-contained HTML page (inline SVG figures)",
};

/** A train node's row, prefixed with that node's L and seed. */
const perRun = { L: Int32, seed: Int32 };

/** The tables the report is made from, written beside it (the figures' and statements' numbers). */
const TABLE_OUTPUTS = {
  sectionsAcrossSeeds: table("aggregate's per (depth, section) means over seeds", SectionSeedSummaryRowSchema),
  blocksAcrossSeeds: table("aggregate's per (depth, section, block) means over seeds", BlockSeedSummaryRowSchema),
  fits: table("fit's power-law fits", FitRowSchema),
  rules: table("stop-rule's rows", StopRuleRowSchema),
  trainingEpochs: table("every train node's per-epoch metrics", Schema.Struct({ ...perRun, ...EpochRowSchema.fields })),
  trainingTimes: volatileTable(
    "every train node's per-epoch wall time",
    Schema.Struct({ ...perRun, ...TimingRowSchema.fields }),
  ),
};

/**
 * Every file the report writes: the two documents (the type above lists exactly REPORT_DOCUMENTS), each figure as
 * .svg and .png, and the tables.
 */
const FILE_OUTPUTS: Readonly<Record<string, FileOutput>> = {
  ...Object.fromEntries(Object.entries(DOCUMENT_DESCRIPTIONS).map(([name, description]) => [name, file(description)])),
  ...Object.fromEntries(
    FIGURE_NAMES.flatMap((name) => [
      [`${name}.svg`, file(`${name} as SVG`)],
      [`${name}.png`, file(`${name} as PNG`)],
    ]),
  ),
};
const outputs: typeof TABLE_OUTPUTS & Readonly<Record<string, OutputSpec>> = { ...FILE_OUTPUTS, ...TABLE_OUTPUTS };

export const report = defineStage({
  name: "report",
  version: "2", // 2: comparison with the paper, training curves, small multiples, the tables beside the report
  description: "the paper's figures and tables as report.md and a self-contained report.html",
  params: Schema.Struct({ dataset: DatasetName, eps: Schema.Number.pipe(Schema.positive()) }),
  resources: "cpu",
  instances: (config: PaperConfig) => config.datasets.map((dataset) => ({ dataset, eps: config.analysis.eps })),
  inputs: (p, config) => {
    const saturationTolerance = config.analysis.saturationTolerance;
    return {
      aggregate: dependOn(aggregate, { dataset: p.dataset }),
      fit: dependOn(fit, { dataset: p.dataset, saturationTolerance }),
      stopRule: dependOn(stopRule, { dataset: p.dataset, eps: p.eps, saturationTolerance }),
      ...Object.fromEntries(
        runsOf(config, p.dataset).map(({ L, seed }) => [
          trainInputName(L, seed),
          dependOn(train, trainParamsFor(config, p.dataset, L, seed)),
        ]),
      ),
    };
  },
  label: (p) => `${p.dataset},eps=${p.eps}`,
  outputs,
  // What the whole run found, from the report's own small tables: what `run` prints at its end.
  summarize: (node) =>
    Effect.gen(function* () {
      const network = (yield* node.readTable("sectionsAcrossSeeds"))
        .filter((r) => r.section === -1)
        .sort((a, b) => a.depth - b.depth);
      // Formatted here: the report's own formatting modules load the renderer, which `run` must not pay for.
      const percent = (x: number | null) => (x === null ? "n/a" : `${(100 * x).toFixed(2)}%`);
      const errors = network.map((r) => `${percent(r.testError)} (L=${r.depth})`);
      return [
        `test error ${errors.join(", ")}`,
        exponentsSummary(yield* node.readTable("fits")),
        stopRuleSummary(yield* node.readTable("rules"), node.params.eps),
        `report: ${yield* node.path("report.html")}`,
      ].join("\n");
    }),
  run: (p, io) =>
    Effect.gen(function* () {
      const trainRuns = io.inputsOf(train);
      const runs: TrainRun[] = trainRuns.map((t) => ({ params: t.params, runtime: t.runtime }));
      const aggregated = io.input("aggregate");
      const sectionsAcrossSeeds = yield* aggregated.readTable("sectionsAcrossSeeds");
      const blocksAcrossSeeds = yield* aggregated.readTable("blocksAcrossSeeds");
      const fits = yield* io.input("fit").readTable("fits");
      const rules = yield* io.input("stopRule").readTable("rules");
      const trainingEpochs = yield* Effect.forEach(trainRuns, (t) =>
        Effect.map(t.readTable("epochs"), (rows) =>
          rows.map((row) => ({ L: t.params.L, seed: t.params.seed, ...row })),
        ),
      ).pipe(Effect.map((tables) => tables.flat()));
      const trainingTimes = yield* Effect.forEach(trainRuns, (t) =>
        Effect.map(t.readTable("timings"), (rows) =>
          rows.map((row) => ({ L: t.params.L, seed: t.params.seed, ...row })),
        ),
      ).pipe(Effect.map((tables) => tables.flat()));
      const spec = DATASETS[p.dataset];
      const input: ReportInput = {
        datasetName: spec.displayName,
        trainSplitSize: spec.splitSizes.train,
        eps: p.eps,
        sections: yield* aggregated.readTable("sections"),
        sectionsAcrossSeeds,
        blocksAcrossSeeds,
        fits,
        rules,
        runs,
        epochs: trainingEpochs,
        paper: p.dataset === "mnist" ? PAPER_MNIST : null,
      };
      yield* io.writeTable("sectionsAcrossSeeds", sectionsAcrossSeeds);
      yield* io.writeTable("blocksAcrossSeeds", blocksAcrossSeeds);
      yield* io.writeTable("fits", fits);
      yield* io.writeTable("rules", rules);
      yield* io.writeTable("trainingEpochs", trainingEpochs);
      yield* io.writeTable("trainingTimes", trainingTimes);
      yield* io.progress({ message: "rendering figures" });
      yield* attemptPromise("report", async () => {
        const { buildReport } = await import("../science/report/report.ts");
        for (const f of await buildReport(input)) await writeFile(io.outputPath(f.name), f.contents);
      });
    }),
});
