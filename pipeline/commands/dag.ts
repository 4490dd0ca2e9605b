/** `pipeline dag TARGET [--format text|mermaid|dot]`: the graph. */
import { Effect } from "effect";
import type { Dag } from "../graph.ts";
import { dagFromFlags, defineCommand } from "./context.ts";
import { UsageError } from "./errors.ts";

export const dag = defineCommand({
  name: "dag",
  store: "none",
  flags: { format: { type: "string" } },
  run: (ctx) =>
    Effect.gen(function* () {
      const graph = yield* dagFromFlags(ctx, ctx.positionals[0] ?? "all");
      const format = ctx.flags.format ?? "text";
      if (!isDagFormat(format))
        return yield* new UsageError({ message: `unknown --format "${format}" (text, mermaid or dot)` });
      ctx.out.write(`${renderDag(graph, format)}\n`);
      return 0;
    }),
});

type DagFormat = "text" | "mermaid" | "dot";

const isDagFormat = (format: string): format is DagFormat =>
  format === "text" || format === "mermaid" || format === "dot";

/** Text: one line per node in execution order with its inputs; mermaid and dot: graph sources. */
export const renderDag = <C, R>(dag: Dag<C, R>, format: DagFormat): string => {
  const edges = dag.order.flatMap((id) => Object.values(dag.nodes.get(id)!.deps).map((d) => [d, id] as const));
  const index = new Map(dag.order.map((id, i) => [id, `n${i}`]));
  switch (format) {
    case "text":
      return dag.order
        .map((id) => {
          const n = dag.nodes.get(id)!;
          const deps = [...new Set(Object.values(n.deps))];
          const gpu = n.stage.resources === "gpu" ? " (gpu)" : "";
          if (deps.length === 0) return `${id}${gpu}`;
          const shown = deps.length > 4 ? [...deps.slice(0, 3), `... ${deps.length - 3} more`] : deps;
          return `${id}${gpu} <- ${shown.join(", ")}`;
        })
        .join("\n");
    case "mermaid":
      return [
        "graph LR",
        ...dag.order.map((id) => `  ${index.get(id)}["${id.replaceAll('"', "'")}"]`),
        ...[...new Set(edges.map(([a, b]) => `  ${index.get(a)} --> ${index.get(b)}`))],
      ].join("\n");
    case "dot":
      return [
        "digraph pipeline {",
        "  rankdir=LR;",
        ...dag.order.map((id) => `  ${index.get(id)} [label=${JSON.stringify(id)}];`),
        ...[...new Set(edges.map(([a, b]) => `  ${index.get(a)} -> ${index.get(b)};`))],
        "}",
      ].join("\n");
  }
};
