/**
 * aggregate(dataset): over every trained depth and seed, per block the mean and std over images of each measure and
 * its position in its section; per section the computational distance d, the scaled distance, d/L and d_scaled/L;
 * network totals; test error per run. Streams the probe tables, so memory grows with blocks, not images.
 */
import { Effect, Schema } from "effect";
import { combineRuns, RunAccumulator, type ProbeRow, type RunAggregate } from "../science/analysis.ts";
import { columns, defineStage, dependOn, fail, StageError, StageIO, table } from "../pipeline/stage.ts";
import { DatasetName, runsOf, trainParamsFor, type PaperConfig } from "./config.ts";
import { probe } from "./probe.ts";
import { train } from "./train.ts";

const probeInput = (L: number, seed: number) => `probe[L=${L},seed=${seed}]`;
const trainInput = (L: number, seed: number) => `train[L=${L},seed=${seed}]`;

export const BLOCK_COLUMNS =
  "dataset:UTF8 depth:INT32 seed:INT32 section:INT32 block:INT32 position:DOUBLE images:INT32 zeroNormImages:INT32 " +
  "undefinedCosineImages:INT32 absMean:DOUBLE absStd:DOUBLE? scaledMean:DOUBLE? scaledStd:DOUBLE? cosineMean:DOUBLE? cosineStd:DOUBLE?";
export const SECTION_COLUMNS =
  "dataset:UTF8 depth:INT32 seed:INT32 section:INT32 blocks:INT32 images:INT32 zeroNormImages:INT32 distance:DOUBLE " +
  "scaledDistance:DOUBLE? meanPerturbation:DOUBLE meanScaledPerturbation:DOUBLE? testError:DOUBLE?";
export const SECTION_SEEDS_COLUMNS =
  "dataset:UTF8 depth:INT32 section:INT32 blocks:INT32 seeds:INT32 distance:DOUBLE distanceSeedStd:DOUBLE? " +
  "scaledDistance:DOUBLE? scaledDistanceSeedStd:DOUBLE? meanPerturbation:DOUBLE meanPerturbationSeedStd:DOUBLE? " +
  "meanScaledPerturbation:DOUBLE? meanScaledPerturbationSeedStd:DOUBLE? testError:DOUBLE? testErrorSeedStd:DOUBLE?";
export const BLOCK_SEEDS_COLUMNS =
  "dataset:UTF8 depth:INT32 section:INT32 block:INT32 position:DOUBLE seeds:INT32 absMean:DOUBLE absMeanSeedStd:DOUBLE? " +
  "scaledMean:DOUBLE? scaledMeanSeedStd:DOUBLE? cosineMean:DOUBLE? cosineMeanSeedStd:DOUBLE?";

export const aggregate = defineStage({
  name: "aggregate",
  version: "1",
  description: "per-block and per-section perturbation statistics over all trained depths",
  params: Schema.Struct({ dataset: DatasetName }),
  resources: "cpu",
  instances: (config: PaperConfig) => config.datasets.map((dataset) => ({ dataset })),
  inputs: (p, config) =>
    Object.fromEntries(
      runsOf(config, p.dataset).flatMap(({ L, seed }) => {
        const trainParams = trainParamsFor(config, p.dataset, L, seed);
        return [
          [trainInput(L, seed), dependOn(train, trainParams)],
          [probeInput(L, seed), dependOn(probe, { dataset: p.dataset, L, seed, images: config[p.dataset].probeImages })],
        ];
      }),
    ),
  label: (p) => p.dataset,
  outputs: {
    blocks: table("per (depth, seed, section, block): statistics over images; section -1 never appears here", columns(BLOCK_COLUMNS)),
    sections: table("per (depth, seed, section): distances and mean perturbations; section -1 = whole network", columns(SECTION_COLUMNS)),
    blocksAcrossSeeds: table("per (depth, section, block): means over seeds with their std", columns(BLOCK_SEEDS_COLUMNS)),
    sectionsAcrossSeeds: table("per (depth, section): means over seeds with their std", columns(SECTION_SEEDS_COLUMNS)),
  },
  run: (p) =>
    Effect.gen(function* () {
      const io = yield* StageIO;
      const runs = io.inputNames.filter((n) => n.startsWith("probe[")).map((n) => {
        const m = /^probe\[L=(\d+),seed=(\d+)\]$/.exec(n)!;
        return { L: Number(m[1]), seed: Number(m[2]) };
      });
      const finished: RunAggregate[] = [];
      for (const [i, { L, seed }] of runs.entries()) {
        yield* io.progress({ fraction: i / runs.length, message: `L=${L} seed=${seed}` });
        const epochs = yield* io.readTable(trainInput(L, seed), "epochs");
        const lastEpoch = epochs.reduce<(typeof epochs)[number] | undefined>(
          (a, r) => (a === undefined || (r.epoch as number) > (a.epoch as number) ? r : a),
          undefined,
        );
        if (lastEpoch === undefined) return yield* fail(`train L=${L} seed=${seed} recorded no epoch`);
        const accumulator = new RunAccumulator({ dataset: p.dataset, depth: L, seed, testError: lastEpoch.testError as number });
        yield* io.forEachRowBatch(probeInput(L, seed), "perturbations", (rows) =>
          Effect.try({
            try: () => {
              for (const r of rows) accumulator.add(r as unknown as ProbeRow);
            },
            catch: (e) => new StageError({ message: `probe L=${L} seed=${seed}: ${(e as Error).message}` }),
          }),
        );
        finished.push(
          yield* Effect.try({
            try: () => accumulator.finish(),
            catch: (e) => new StageError({ message: `probe L=${L} seed=${seed}: ${(e as Error).message}` }),
          }),
        );
      }
      const tables = combineRuns(finished);
      yield* io.writeTable("blocks", tables.blocks);
      yield* io.writeTable("sections", tables.sections);
      yield* io.writeTable("blocksAcrossSeeds", tables.blocksAcrossSeeds);
      yield* io.writeTable("sectionsAcrossSeeds", tables.sectionsAcrossSeeds);
    }),
});
