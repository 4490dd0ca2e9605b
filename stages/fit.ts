/**
 * fit(dataset): per section and for the whole network, the least-squares fit of log(mean scaled perturbation) on
 * log L (the paper's hypothesis: slope -1) with a confidence interval, the two estimates of d_scaled (Eq. 11) and
 * the depth from which the absolute distance saturates. One row per seed, plus one for the means over seeds.
 */
import { Effect, Schema } from "effect";
import { fitCurves, type CurvePoint } from "../science/analysis.ts";
import { columns, defineStage, dependOn, StageError, StageIO, table, type Row } from "../pipeline/stage.ts";
import { aggregate } from "./aggregate.ts";
import { DatasetName, type PaperConfig } from "./config.ts";

export const FIT_COLUMNS =
  "dataset:UTF8 seed:INT32? section:INT32 depths:INT32 excludedDepths:INT32 minDepth:INT32 maxDepth:INT32 slope:DOUBLE? " +
  "intercept:DOUBLE? slopeStdError:DOUBLE? interceptStdError:DOUBLE? slopeCiLow:DOUBLE? slopeCiHigh:DOUBLE? confidence:DOUBLE " +
  "tQuantile:DOUBLE? rSquared:DOUBLE? scaledDistanceFixedSlope:DOUBLE? scaledDistanceSaturated:DOUBLE? saturatedDepths:INT32 " +
  "distanceAtDeepest:DOUBLE distanceSaturationDepth:INT32? saturationTolerance:DOUBLE";

/** Section rows as fit curve points: per-seed rows keep their seed, across-seed rows have none. */
export const curvePoints = (perSeed: ReadonlyArray<Row>, acrossSeeds: ReadonlyArray<Row>): CurvePoint[] => [
  ...perSeed.map((r) => r as unknown as CurvePoint),
  ...acrossSeeds.map((r) => {
    const { seed: _omit, ...rest } = r as Record<string, unknown>;
    return rest as unknown as CurvePoint;
  }),
];

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
  outputs: { fits: table("one fit per (seed or means over seeds, section); section -1 = whole network", columns(FIT_COLUMNS)) },
  run: (p) =>
    Effect.gen(function* () {
      const io = yield* StageIO;
      const points = curvePoints(yield* io.readTable("aggregate", "sections"), yield* io.readTable("aggregate", "sectionsAcrossSeeds"));
      const fits = yield* Effect.try({
        try: () => fitCurves(points, { saturationTolerance: p.saturationTolerance }),
        catch: (e) => new StageError({ message: `fit: ${(e as Error).message}` }),
      });
      yield* io.writeTable("fits", fits as unknown as ReadonlyArray<Row>);
    }),
});
