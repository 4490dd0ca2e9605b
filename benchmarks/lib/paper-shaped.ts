/**
 * The paper's DAG with trivial bodies: the paper's own stage declarations (same names, versions, parameter schemas,
 * labels, instances, inputs and outputs, hence the same DAG and key derivation), each `run` replaced by one that
 * writes a one-row table per table output and a few bytes per file output. Under `--preset paper` it expands to the
 * paper's full sweep (both data sets, PAPER_DEPTHS). Keys of source nodes equal the real pipeline's and the rest follow
 * from the dummy bytes, so its caches must only ever live in throw-away directories; in exchange, the real CLI
 * (bin/pipeline.mjs) finds such a cache fully cached too, which lets the benchmark time the real entry point.
 */
import { Layer } from "effect";
import type { PipelineDefinition } from "../../pipeline/definition.ts";
import type { PaperConfig } from "../../stages/config.ts";
import { paperPipeline } from "../../stages/index.ts";
import { withTrivialRun } from "./trivial-stages.ts";

/** Use preset "paper" for the paper's sweep. */
export const paperShapedPipeline: PipelineDefinition<PaperConfig, never> = {
  name: "paper-shaped-benchmark",
  version: paperPipeline.version,
  stages: paperPipeline.stages.map((stage) => withTrivialRun<PaperConfig>(stage)),
  config: paperPipeline.config,
  defaultConfig: paperPipeline.defaultConfig,
  presets: paperPipeline.presets,
  options: paperPipeline.options,
  configure: paperPipeline.configure,
  layer: () => Layer.empty,
};
