/**
 * aggregate(dataset): over every trained depth and seed, per block the mean and std over images of each measure and
 * its position in its section; per section the computational distance d, the scaled distance, d/L and d_scaled/L;
 * network totals; test error per run. Streams the probe tables, so memory grows with blocks, not images.
 */
import { Effect, Schema, Stream } from "effect";
import {
  BlockSeedSummaryRowSchema,
  BlockStatsRowSchema,
  combineRuns,
  RunAccumulator,
  SectionSeedSummaryRowSchema,
  SectionStatsRowSchema,
  type RunAggregate,
} from "../science/analysis.ts";
import { attempt, defineStage, dependOn, fail, type Dependency } from "../pipeline/stage.ts";
import { table } from "../pipeline/table.ts";
import { DatasetName, runsOf, trainParamsFor, type PaperConfig } from "./config.ts";
import { probe } from "./probe.ts";
import { train, trainInputName } from "./train.ts";

/** Input names of one run's train and probe nodes (part of the node's key: never change them). */
const probeInput = (L: number, seed: number) => `probe[L=${L},seed=${seed}]`;
export const aggregate = defineStage({
  name: "aggregate",
  version: "1",
  description: "per-block and per-section perturbation statistics over all trained depths",
  params: Schema.Struct({ dataset: DatasetName }),
  resources: "cpu",
  instances: (config: PaperConfig) => config.datasets.map((dataset) => ({ dataset })),
  inputs: (p, config) =>
    Object.fromEntries(
      runsOf(config, p.dataset).flatMap(({ L, seed }): Array<readonly [string, Dependency]> => {
        const trainParams = trainParamsFor(config, p.dataset, L, seed);
        return [
          [trainInputName(L, seed), dependOn(train, trainParams)],
          [
            probeInput(L, seed),
            dependOn(probe, { dataset: p.dataset, L, seed, images: config[p.dataset].probeImages }),
          ],
        ];
      }),
    ),
  label: (p) => p.dataset,
  outputs: {
    blocks: table(
      "per (depth, seed, section, block): statistics over images; section -1 never appears here",
      BlockStatsRowSchema,
    ),
    sections: table(
      "per (depth, seed, section): distances and mean perturbations; section -1 = whole network",
      SectionStatsRowSchema,
    ),
    blocksAcrossSeeds: table("per (depth, section, block): means over seeds with their std", BlockSeedSummaryRowSchema),
    sectionsAcrossSeeds: table("per (depth, section): means over seeds with their std", SectionSeedSummaryRowSchema),
  },
  run: (p, io) =>
    Effect.gen(function* () {
      const trains = io.inputsOf(train);
      const probes = io.inputsOf(probe);
      const finished: RunAggregate[] = [];
      for (const [i, probed] of probes.entries()) {
        const { L, seed } = probed.params;
        yield* io.progress({ fraction: i / probes.length, message: `L=${L} seed=${seed}` });
        const trained = trains.find((t) => t.params.L === L && t.params.seed === seed);
        if (trained === undefined) return yield* fail(`aggregate has no train input for L=${L} seed=${seed}`);
        const epochs = yield* trained.readTable("epochs");
        const lastEpoch = epochs.reduce<(typeof epochs)[number] | undefined>(
          (a, r) => (a === undefined || r.epoch > a.epoch ? r : a),
          undefined,
        );
        if (lastEpoch === undefined) return yield* fail(`train L=${L} seed=${seed} recorded no epoch`);
        const what = `probe L=${L} seed=${seed}`;
        const accumulator = new RunAccumulator({ dataset: p.dataset, depth: L, seed, testError: lastEpoch.testError });
        yield* Stream.runForEachChunk(probed.streamTable("perturbations"), (rows) =>
          attempt(what, () => {
            for (const r of rows) accumulator.add(r);
          }),
        );
        finished.push(yield* attempt(what, () => accumulator.finish()));
      }
      const tables = combineRuns(finished);
      yield* io.writeTable("blocks", tables.blocks);
      yield* io.writeTable("sections", tables.sections);
      yield* io.writeTable("blocksAcrossSeeds", tables.blocksAcrossSeeds);
      yield* io.writeTable("sectionsAcrossSeeds", tables.sectionsAcrossSeeds);
    }),
});
