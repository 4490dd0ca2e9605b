/**
 * report(dataset, eps): the paper's Figures 1-7 and the training curves (each as SVG and PNG), the comparison with
 * the paper and the tables in report.md (figures by relative PNG name, so a copy of the node's files renders on
 * GitHub) and a self-contained report.html, from the aggregate, fit and stop-rule tables and every train node's
 * configuration and per-epoch metrics. It also writes the tables it was made from, so a copy of its files (`--out`)
 * lets anyone check the numbers, and scripts/readme-report.ts regenerate the README's block, without the cache.
 */
import { writeFile } from "node:fs/promises";
import { Effect, Schema } from "effect";
import type { BlockSeedSummaryRow, FitRow, SectionSeedSummaryRow, SectionStatsRow, StopRuleRow } from "../science/analysis.ts";
import { DATASETS } from "../science/data/datasets.ts";
import type { TrainRun } from "../science/report/document.ts";
import { FIGURE_NAMES, type TrainingEpochRow } from "../science/report/figures.ts";
import { PAPER_MNIST } from "../science/report/paper.ts";
// Types only: science/report/report.ts loads vega, vega-lite and the native resvg, so it is imported when a report
// node runs, not by every command that merely lists the stages.
import type { REPORT_DOCUMENTS, ReportInput } from "../science/report/report.ts";
import {
  columns,
  defineStage,
  dependOn,
  file,
  StageError,
  StageIO,
  table,
  volatileTable,
  type OutputSpec,
  type Row,
  type TableOutput,
} from "../pipeline/stage.ts";
import { aggregate } from "./aggregate.ts";
import { DatasetName, runsOf, trainParamsFor, type PaperConfig, type TrainParams } from "./config.ts";
import { fit } from "./fit.ts";
import { stopRule } from "./stop-rule.ts";
import { train } from "./train.ts";

const trainInput = (L: number, seed: number) => `train[L=${L},seed=${seed}]`;

const DOCUMENT_DESCRIPTIONS: Record<(typeof REPORT_DOCUMENTS)[number], string> = {
  "report.md": "the report as GitHub markdown; figures by relative PNG file name",
  "report.html": "the report as one self-contained HTML page (inline SVG figures)",
};

/** The columns of an upstream table output, for the copies the report writes of them. */
const columnsOf = (spec: OutputSpec | undefined): TableOutput["columns"] => {
  if (spec?.kind !== "table") throw new Error("report: an upstream output it copies is not a table");
  return spec.columns;
};

/** Each train node's rows of one of its tables, prefixed with the node's L and seed. */
const RUN_COLUMNS = columns("L:INT32 seed:INT32");

/** The tables the report is made from, written beside it (the figures' and statements' numbers). */
const TABLE_OUTPUTS = {
  sectionsAcrossSeeds: table(
    "aggregate's per (depth, section) means over seeds",
    columnsOf(aggregate.outputs.sectionsAcrossSeeds),
  ),
  blocksAcrossSeeds: table(
    "aggregate's per (depth, section, block) means over seeds",
    columnsOf(aggregate.outputs.blocksAcrossSeeds),
  ),
  fits: table("fit's power-law fits", columnsOf(fit.outputs.fits)),
  rules: table("stop-rule's rows", columnsOf(stopRule.outputs.rules)),
  trainingEpochs: table("every train node's per-epoch metrics", { ...RUN_COLUMNS, ...columnsOf(train.outputs.epochs) }),
  trainingTimes: volatileTable("every train node's per-epoch wall time", {
    ...RUN_COLUMNS,
    ...columnsOf(train.outputs.timings),
  }),
} satisfies Record<string, TableOutput>;

/**
 * Every file the report writes: the two documents (the type above lists exactly REPORT_DOCUMENTS), each figure as
 * .svg and .png, and the tables.
 */
const outputs: Record<string, OutputSpec> = {
  ...TABLE_OUTPUTS,
  ...Object.fromEntries(Object.entries(DOCUMENT_DESCRIPTIONS).map(([name, description]) => [name, file(description)])),
  ...Object.fromEntries(
    FIGURE_NAMES.flatMap((name) => [
      [`${name}.svg`, file(`${name} as SVG`)],
      [`${name}.png`, file(`${name} as PNG`)],
    ]),
  ),
};

const rows = <T>(table: ReadonlyArray<Row>) => table as unknown as T[];

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
        runsOf(config, p.dataset).map(({ L, seed }) => [trainInput(L, seed), dependOn(train, trainParamsFor(config, p.dataset, L, seed))]),
      ),
    };
  },
  label: (p) => `${p.dataset},eps=${p.eps}`,
  outputs,
  run: (p) =>
    Effect.gen(function* () {
      const io = yield* StageIO;
      const trainInputs = io.inputNames.filter((name) => name.startsWith("train["));
      const runs: TrainRun[] = trainInputs.map((name) => ({
        params: io.inputParams(name) as TrainParams,
        runtime: io.inputRuntime(name),
      }));
      /** One table of every train node, each row with its node's L and seed. */
      const acrossRuns = (artifact: string) =>
        Effect.forEach(runs, ({ params: { L, seed } }, i) =>
          Effect.map(io.readTable(trainInputs[i]!, artifact), (table) => table.map((row) => ({ L, seed, ...row }))),
        ).pipe(Effect.map((tables) => tables.flat()));
      const tables: Record<keyof typeof TABLE_OUTPUTS, ReadonlyArray<Row>> = {
        sectionsAcrossSeeds: yield* io.readTable("aggregate", "sectionsAcrossSeeds"),
        blocksAcrossSeeds: yield* io.readTable("aggregate", "blocksAcrossSeeds"),
        fits: yield* io.readTable("fit", "fits"),
        rules: yield* io.readTable("stopRule", "rules"),
        trainingEpochs: yield* acrossRuns("epochs"),
        trainingTimes: yield* acrossRuns("timings"),
      };
      const spec = DATASETS[p.dataset];
      const input: ReportInput = {
        datasetName: spec.displayName,
        trainSplitSize: spec.splitSizes.train,
        eps: p.eps,
        sections: rows<SectionStatsRow>(yield* io.readTable("aggregate", "sections")),
        sectionsAcrossSeeds: rows<SectionSeedSummaryRow>(tables.sectionsAcrossSeeds),
        blocksAcrossSeeds: rows<BlockSeedSummaryRow>(tables.blocksAcrossSeeds),
        fits: rows<FitRow>(tables.fits),
        rules: rows<StopRuleRow>(tables.rules),
        runs,
        epochs: rows<TrainingEpochRow>(tables.trainingEpochs),
        paper: p.dataset === "mnist" ? PAPER_MNIST : null,
      };
      for (const [name, table] of Object.entries(tables)) yield* io.writeTable(name, table);
      yield* io.progress({ message: "rendering figures" });
      yield* Effect.tryPromise({
        try: async () => {
          const { buildReport } = await import("../science/report/report.ts");
          for (const f of await buildReport(input)) await writeFile(io.outputPath(f.name), f.contents);
        },
        catch: (e) => new StageError({ message: `report: ${(e as Error).message}` }),
      });
    }),
});
