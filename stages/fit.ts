/**
 * fit(dataset): per section and for the whole network, the least-squares fit of log(mean scaled perturbation) on
 * log L (the paper's hypothesis: slope -1) with a confidence interval, the two estimates of d_scaled (Eq. 11) and
 * the depth from which the absolute distance saturates. One row per seed, plus one for the means over seeds.
 */
import { Effect, Schema } from "effect";
import {
  fitCurves,
  FitRowSchema,
  type CurvePoint,
  type SectionSeedSummaryRow,
  type SectionStatsRow,
} from "../science/analysis.ts";
import { attempt, defineStage, dependOn } from "../pipeline/stage.ts";
import { table } from "../pipeline/table.ts";
import { aggregate } from "./aggregate.ts";
import { DatasetName, type PaperConfig } from "./config.ts";

/** Section rows as fit curve points: per-seed rows keep their seed, across-seed rows have none. */
export const curvePoints = (
  perSeed: ReadonlyArray<SectionStatsRow>,
  acrossSeeds: ReadonlyArray<SectionSeedSummaryRow>,
): CurvePoint[] => [...perSeed, ...acrossSeeds];

export const fit = defineStage({
  name: "fit",
  version: "1",
  description: "power-law fit of the mean scaled perturbation against L, d_scaled estimates, saturation of d",
  params: Schema.Struct({ dataset: DatasetName, saturationTolerance: Schema.Number.pipe(Schema.positive()) }),
  resources: "cpu",
  instances: (config: PaperConfig) =>
    config.datasets.map((dataset) => ({ dataset, saturationTolerance: config.analysis.saturationTolerance })),
  inputs: (p) => ({ aggregate: dependOn(aggregate, { dataset: p.dataset }) }),
  label: (p) => p.dataset,
  outputs: { fits: table("one fit per (seed or means over seeds, section); section -1 = whole network", FitRowSchema) },
  run: (p, io) =>
    Effect.gen(function* () {
      const aggregated = io.input("aggregate");
      const points = curvePoints(
        yield* aggregated.readTable("sections"),
        yield* aggregated.readTable("sectionsAcrossSeeds"),
      );
      const fits = yield* attempt("fit", () => fitCurves(points, { saturationTolerance: p.saturationTolerance }));
      yield* io.writeTable("fits", fits);
    }),
});
