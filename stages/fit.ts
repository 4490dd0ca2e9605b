/**
 * fit(dataset): per section and for the whole network, the least-squares fit of log(mean scaled perturbation) on
 * log L (the paper's hypothesis: slope -1) with a confidence interval, the two estimates of d_scaled (Eq. 11) and
 * the depth from which the absolute distance saturates. One row per seed, plus one for the means over seeds.
 */
import { Effect, Schema } from "effect";
import {
  fitCurves,
  FitRowSchema,
  type FitRow,
  type CurvePoint,
  type SectionSeedSummaryRow,
  type SectionStatsRow,
} from "../science/analysis.ts";
import { attempt, defineStage, dependOn } from "../pipeline/stage.ts";
import { table } from "../pipeline/table.ts";
import { aggregate } from "./aggregate.ts";
import { DatasetName, type PaperConfig } from "./config.ts";

/** `exponent per section (95% CI): -0.93 [-1.10, -0.76], ...; hypothesis -1`, from the fits over seeds' means. */
export const exponentsSummary = (rows: ReadonlyArray<FitRow>): string => {
  const sections = rows.filter((r) => r.seed === null && r.section >= 0).sort((a, b) => a.section - b.section);
  const level = sections[0] === undefined ? "" : ` (${(100 * sections[0].confidence).toFixed(0)}% CI)`;
  return `exponent per section${level}: ${sections.map(exponentText).join(", ")}; hypothesis -1`;
};

/** `-0.93 [-1.10, -0.76]`, or `-0.93` without an interval, or `n/a` below two depths. */
const exponentText = (r: FitRow): string => {
  if (r.slope === null) return "n/a";
  const ci =
    r.slopeCiLow === null || r.slopeCiHigh === null ? "" : ` [${r.slopeCiLow.toFixed(2)}, ${r.slopeCiHigh.toFixed(2)}]`;
  return `${r.slope.toFixed(2)}${ci}`;
};

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
  summarize: (node) => Effect.map(node.readTable("fits"), exponentsSummary),
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
