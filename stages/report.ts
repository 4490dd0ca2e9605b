/**
 * report(dataset, eps): the paper's Figures 1-7 (each as SVG and PNG) and its tables in report.md (figures by
 * relative PNG name, so a copy of the node's files renders on GitHub) and a self-contained report.html, from the
 * aggregate, fit and stop-rule tables and the exact configuration every train node ran with.
 */
import { writeFile } from "node:fs/promises";
import { Effect, Schema } from "effect";
import { DATASETS } from "../science/data/datasets.ts";
import type { TrainRun } from "../science/report/document.ts";
import { FIGURE_NAMES } from "../science/report/figures.ts";
// Types only: science/report/report.ts loads vega, vega-lite and the native resvg, so it is imported when a report
// node runs, not by every command that merely lists the stages.
import type { REPORT_DOCUMENTS, ReportInput } from "../science/report/report.ts";
import { attemptPromise, defineStage, dependOn, file, type OutputSpec } from "../pipeline/stage.ts";
import { aggregate } from "./aggregate.ts";
import { DatasetName, runsOf, trainParamsFor, type PaperConfig } from "./config.ts";
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
  run: (p, io) =>
    Effect.gen(function* () {
      const runs: TrainRun[] = io.inputsOf(train).map((t) => ({ params: t.params, runtime: t.runtime }));
      const aggregated = io.input("aggregate");
      const spec = DATASETS[p.dataset];
      const input: ReportInput = {
        datasetName: spec.displayName,
        trainSplitSize: spec.splitSizes.train,
        eps: p.eps,
        sections: yield* aggregated.readTable("sections"),
        sectionsAcrossSeeds: yield* aggregated.readTable("sectionsAcrossSeeds"),
        blocksAcrossSeeds: yield* aggregated.readTable("blocksAcrossSeeds"),
        fits: yield* io.input("fit").readTable("fits"),
        rules: yield* io.input("stopRule").readTable("rules"),
        runs,
      };
      yield* io.progress({ message: "rendering figures" });
      yield* attemptPromise("report", async () => {
        const { buildReport } = await import("../science/report/report.ts");
        for (const f of await buildReport(input)) await writeFile(io.outputPath(f.name), f.contents);
      });
    }),
});
