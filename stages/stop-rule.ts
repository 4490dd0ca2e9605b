/**
 * stop-rule(dataset, eps): per section the predicted depth L = ceil(d_scaled / eps), the smallest trained L whose
 * measured mean scaled perturbation is below eps, and the paper's numbers beside ours (its predictions recomputed
 * from its d_scaled, not copied).
 */
import { Effect, Schema } from "effect";
import { stopRule as computeStopRule, StopRuleRowSchema, type StopRuleRow } from "../science/analysis.ts";
import { attempt, defineStage, dependOn } from "../pipeline/stage.ts";
import { table } from "../pipeline/table.ts";
import { aggregate } from "./aggregate.ts";
import { DatasetName, type PaperConfig } from "./config.ts";
import { curvePoints, fit } from "./fit.ts";

export const stopRule = defineStage({
  name: "stop-rule",
  version: "1",
  description: "depth at which the mean scaled perturbation falls under eps: predicted, measured, and the paper's",
  params: Schema.Struct({
    dataset: DatasetName,
    eps: Schema.Number.pipe(Schema.positive()),
    saturationTolerance: Schema.Number.pipe(Schema.positive()),
  }),
  resources: "cpu",
  instances: (config: PaperConfig) =>
    config.datasets.map((dataset) => ({
      dataset,
      eps: config.analysis.eps,
      saturationTolerance: config.analysis.saturationTolerance,
    })),
  inputs: (p) => ({
    aggregate: dependOn(aggregate, { dataset: p.dataset }),
    fit: dependOn(fit, { dataset: p.dataset, saturationTolerance: p.saturationTolerance }),
  }),
  label: (p) => `${p.dataset},eps=${p.eps}`,
  summarize: (node) => Effect.map(node.readTable("rules"), (rows) => stopRuleSummary(rows, node.params.eps)),
  outputs: {
    rules: table("one row per (seed or means over seeds, section); section -1 = whole network", StopRuleRowSchema),
  },
  run: (p, io) =>
    Effect.gen(function* () {
      const fits = yield* io.input("fit").readTable("fits");
      const aggregated = io.input("aggregate");
      const points = curvePoints(
        yield* aggregated.readTable("sections"),
        yield* aggregated.readTable("sectionsAcrossSeeds"),
      );
      const rows = yield* attempt("stop rule", () => computeStopRule(fits, points, { epsilon: p.eps }));
      yield* io.writeTable("rules", rows);
    }),
});

/** `blocks per section for eps 0.1: 34 / 17 / 11 (paper: 42 / 32 / 46)`, from the saturated estimator's rows. */
export const stopRuleSummary = (rows: ReadonlyArray<StopRuleRow>, eps: number): string => {
  const sections = rows
    .filter((r) => r.seed === null && r.section >= 0 && r.estimator === "saturated")
    .sort((a, b) => a.section - b.section);
  const depths = (pick: (r: StopRuleRow) => number | null) => sections.map((r) => String(pick(r) ?? "n/a")).join(" / ");
  const paper = sections.some((r) => r.paperPredictedDepth !== null)
    ? ` (paper: ${depths((r) => r.paperPredictedDepth)})`
    : "";
  return `blocks per section for eps ${eps}: ${depths((r) => r.predictedDepth)}${paper}`;
};
