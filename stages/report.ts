/**
 * report(dataset, eps): the paper's Figures 1-7 (each as SVG and PNG) and its tables in report.md (figures by
 * relative PNG name, so a copy of the node's files renders on GitHub) and a self-contained report.html, from the
 * aggregate, fit and stop-rule tables and the exact configuration every train node ran with.
 */
import { writeFile } from "node:fs/promises";
import { Effect, Schema } from "effect";
import type { BlockSeedSummaryRow, FitRow, SectionSeedSummaryRow, SectionStatsRow, StopRuleRow } from "../science/analysis.ts";
import { DATASETS } from "../science/data/datasets.ts";
import type { TrainRun } from "../science/report/document.ts";
import { FIGURE_NAMES } from "../science/report/figures.ts";
// Types only: science/report/report.ts loads vega, vega-lite and the native resvg, so it is imported when a report
// node runs, not by every command that merely lists the stages.
import type { REPORT_DOCUMENTS, ReportInput } from "../science/report/report.ts";
import { defineStage, dependOn, file, StageError, StageIO, type OutputSpec, type Row } from "../pipeline/stage.ts";
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

/** Every file buildReport writes: the two documents (the type above lists exactly REPORT_DOCUMENTS) and each figure as .svg and .png. */
const outputs: Record<string, OutputSpec> = {
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
  version: "1",
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
      const runs: TrainRun[] = io.inputNames
        .filter((name) => name.startsWith("train["))
        .map((name) => ({ params: io.inputParams(name) as TrainParams, runtime: io.inputRuntime(name) }));
      const spec = DATASETS[p.dataset];
      const input: ReportInput = {
        datasetName: spec.displayName,
        trainSplitSize: spec.splitSizes.train,
        eps: p.eps,
        sections: rows<SectionStatsRow>(yield* io.readTable("aggregate", "sections")),
        sectionsAcrossSeeds: rows<SectionSeedSummaryRow>(yield* io.readTable("aggregate", "sectionsAcrossSeeds")),
        blocksAcrossSeeds: rows<BlockSeedSummaryRow>(yield* io.readTable("aggregate", "blocksAcrossSeeds")),
        fits: rows<FitRow>(yield* io.readTable("fit", "fits")),
        rules: rows<StopRuleRow>(yield* io.readTable("stopRule", "rules")),
        runs,
      };
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
