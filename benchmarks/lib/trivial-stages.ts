/**
 * Trivial stage bodies for the planning benchmark (so a DAG is fully cached in seconds), and a synthetic layered DAG
 * of any size to see how planning grows with the node count. Imports nothing of the paper's stages, so a process that
 * only needs the layered DAG loads the engine alone.
 */
import { writeFile } from "node:fs/promises";
import { Effect, Layer, Schema } from "effect";
import type { PipelineDefinition } from "../../pipeline/definition.ts";
import { dependOn, StageIO, type AnyStage } from "../../pipeline/stage.ts";
import { Int32, table, type Cell, type ColumnType } from "../../pipeline/table.ts";

const dummyCell = (type: ColumnType): Cell =>
  type === "UTF8" ? "x" : type === "BOOLEAN" ? false : type === "BYTE_ARRAY" ? new Uint8Array([0]) : 0;

/** The same stage with a trivial body: one row per table output (every column set), a few bytes per file output. */
export const withTrivialRun = <C>(stage: AnyStage<C, unknown>): AnyStage<C, never> => ({
  ...stage,
  run: () =>
    Effect.gen(function* () {
      const io = yield* StageIO;
      for (const [name, spec] of Object.entries(stage.outputs)) {
        if (spec.kind === "table") {
          const row = Object.fromEntries(
            Object.entries(spec.columns).map(([column, c]) => [column, dummyCell(c.type)]),
          );
          yield* io.writeTable(name, [row]);
        } else {
          const file = io.outputPath(name);
          yield* Effect.promise(() => writeFile(file, `${name}\n`));
        }
      }
    }),
});

export interface LayeredConfig {
  /** Total node count. */
  readonly nodes: number;
}

const LayeredConfigSchema = Schema.Struct({ nodes: Schema.Int.pipe(Schema.positive()) });

/** Nodes per layer: about the square root of the node count (a 10,000-node DAG is 100 layers of 100), at least 3. */
export const layerWidth = (nodes: number): number => Math.max(3, Math.ceil(Math.sqrt(nodes)));

interface LayeredParams {
  readonly layer: number;
  readonly index: number;
}

/**
 * Node (layer, index) of a layered DAG. Layer 0 are sources; every other node reads 2 (even index) or 3 (odd index)
 * consecutive nodes of the full layer above, wrapping around. Only the last layer may be partial.
 */
export const layeredNode: AnyStage<LayeredConfig, never> = withTrivialRun<LayeredConfig>({
  name: "node",
  version: "1",
  description: "a node of a synthetic layered DAG",
  params: Schema.Struct({ layer: Schema.Int, index: Schema.Int }),
  resources: "cpu",
  instances: (config: LayeredConfig) => {
    const width = layerWidth(config.nodes);
    return Array.from({ length: config.nodes }, (_, i) => ({ layer: Math.floor(i / width), index: i % width }));
  },
  inputs: (p: LayeredParams, config: LayeredConfig) => {
    if (p.layer === 0) return {};
    const width = layerWidth(config.nodes);
    const fanIn = p.index % 2 === 0 ? 2 : 3;
    return Object.fromEntries(
      Array.from({ length: fanIn }, (_, k) => [
        `in${k}`,
        dependOn(layeredNode, { layer: p.layer - 1, index: (p.index + k) % width }),
      ]),
    );
  },
  label: (p: LayeredParams) => `${p.layer}.${p.index}`,
  outputs: { value: table("one row", Schema.Struct({ layer: Int32, index: Int32 })) },
  run: () => Effect.void,
});

/** The layered DAG; the node count comes from the configuration (`--set nodes=1000`). */
export const layeredPipeline: PipelineDefinition<LayeredConfig, never> = {
  name: "layered-benchmark",
  version: "1",
  stages: [layeredNode],
  config: LayeredConfigSchema,
  defaultConfig: { nodes: 100 },
  presets: {},
  options: [],
  configure: (encoded) => encoded,
  layer: () => Layer.empty,
};

/** Edge count of the layered DAG with `nodes` nodes (for reports): 2 or 3 inputs per node below layer 0. */
export const layeredEdgeCount = (nodes: number): number => {
  const width = layerWidth(nodes);
  let edges = 0;
  for (let i = width; i < nodes; i++) edges += (i % width) % 2 === 0 ? 2 : 3;
  return edges;
};
