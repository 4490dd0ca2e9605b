/**
 * What a run found, node by node: after `run`, each finished node whose stage can summarize itself (a test error, the
 * fitted exponents, where the report is) gets one line, read from its artifacts, so cached nodes are summarized too.
 */
import { Effect } from "effect";
import type { NodeResult } from "./executor/dag.ts";
import type { Dag } from "./graph.ts";
import { finishedNode } from "./stage.ts";
import { nodeReader } from "./stage-io.ts";

/**
 * `[node id, text]` for the targets nothing else in the DAG builds on (for `all`: the final nodes, whose summaries
 * cover what the run found; for `train`: every train node), in target order, where the stage has `summarize`. Only
 * those: a fully cached run of the paper's DAG reads a few small tables, not one per node. A summary that cannot be
 * read says why.
 */
export const summarizeResults = <C, R>(
  dag: Dag<C, R>,
  results: ReadonlyArray<NodeResult>,
): Effect.Effect<ReadonlyArray<readonly [string, string]>> => {
  const byId = new Map(results.map((r) => [r.id, r]));
  const builtOn = new Set([...dag.nodes.values()].flatMap((n) => Object.values(n.deps)));
  const shown = dag.targets.filter((id) => !builtOn.has(id));
  const summaries = shown.flatMap((id) => {
    const node = dag.nodes.get(id)!;
    const result = byId.get(id);
    const summarize = node.stage.summarize;
    if (summarize === undefined || result?.manifest === undefined) return [];
    const reader = nodeReader(result, node.stage.outputs, id);
    const line = summarize(finishedNode(id, node.params, result.manifest.runtime, reader)).pipe(
      Effect.catchAll((e) => Effect.succeed(`(no summary: ${e.message})`)),
      Effect.map((text) => [id, text] as const),
    );
    return [line];
  });
  return Effect.all(summaries);
};

/** The summaries as an indented block under `results:`, ids aligned, a summary's further lines under its first. */
export const resultsBlock = (summaries: ReadonlyArray<readonly [string, string]>): string => {
  if (summaries.length === 0) return "";
  const width = Math.min(48, Math.max(...summaries.map(([id]) => id.length)));
  const rows = summaries.map(([id, text]) =>
    text
      .split("\n")
      .map((line, i) => `  ${(i === 0 ? id : "").padEnd(width)}  ${line}`)
      .join("\n"),
  );
  return `results:\n${rows.join("\n")}\n`;
};
