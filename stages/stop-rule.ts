/**
 * stop-rule(dataset, eps): per section the predicted depth L = ceil(d_scaled / eps), the smallest trained L whose
 * measured mean scaled perturbation is below eps, and the paper's numbers beside ours (its predictions recomputed
 * from its d_scaled, not copied).
 */
import { Effect, Schema } from "effect";
import { stopRule as computeStopRule, type FitRow } from "../science/analysis.ts";
import { columns, defineStage, dependOn, StageError, StageIO, table, type Row } from "../pipeline/stage.ts";
import { aggregate } from "./aggregate.ts";
import { DatasetName, type PaperConfig } from "./config.ts";
import { curvePoints, fit } from "./fit.ts";

export const STOP_RULE_COLUMNS =
  "dataset:UTF8 seed:INT32? section:INT32 epsilon:DOUBLE estimator:UTF8 scaledDistance:DOUBLE? predictedDepth:INT32? " +
  "empiricalDepth:INT32? minTrainedDepth:INT32 maxTrainedDepth:INT32 paperScaledDistance:DOUBLE? paperPredictedDepth:INT32? " +
  "paperEmpiricalDepth:INT32?";

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
  outputs: { rules: table("one row per (seed or means over seeds, section); section -1 = whole network", columns(STOP_RULE_COLUMNS)) },
  run: (p) =>
    Effect.gen(function* () {
      const io = yield* StageIO;
      const fits = (yield* io.readTable("fit", "fits")) as unknown as FitRow[];
      const points = curvePoints(yield* io.readTable("aggregate", "sections"), yield* io.readTable("aggregate", "sectionsAcrossSeeds"));
      const rows = yield* Effect.try({
        try: () => computeStopRule(fits, points, { epsilon: p.eps }),
        catch: (e) => new StageError({ message: `stop rule: ${(e as Error).message}` }),
      });
      yield* io.writeTable("rules", rows as unknown as ReadonlyArray<Row>);
    }),
});
