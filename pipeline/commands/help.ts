/** The usage text of `pipeline --help`, with the commands and flags a pipeline definition adds. */
import type { PipelineDefinition } from "../definition.ts";

const HELP = (extra: string) => `usage: pipeline <command> [options]

commands:
  run TARGET        compute TARGET (a stage name, stage[label], or all), reusing cached artifacts
                    [--dry-run] [--force STAGE]... [--jobs N] [--gpus N] [--json] [--out DIR: copy the target's artifacts]
  status [TARGET]   list what is cached and what is stale for TARGET (default all)
  dag TARGET        print the graph [--format text|mermaid|dot]
  inspect REF       show an artifact: REF is a key (prefix), a node id like preprocess[mnist], or STAGE:label
                    [--rows N] [--json] [--list]
  inspect REF... --sql QUERY
                    run a read-only SQL SELECT over the REFs' tables: each a view named after its artifact,
                    plus one per stage of several REFs with the nodes' parameters as columns (the names are
                    listed on stderr) [--format table|csv|json] [--rows N]
  gc                remove artifacts that no node of the current configuration reaches [--dry-run]
  lock TARGET       pin TARGET's configuration, node keys and artifact sha256s in a JSON lock file
                    (every node must be cached) [--out FILE, default pipeline.lock.json] [--json]
  replay [TARGET] --check
                    recompute TARGET from scratch in a temporary cache and compare every node with
                    --lock FILE or with the current cache [--keep] [--jobs N] [--gpus N] [--json]; exit 1 on any difference
${extra}
common options:
  --cache-dir DIR   artifact store (env PIPELINE_CACHE_DIR, default ./cache)
  --config FILE     JSON configuration merged over the defaults
  --preset NAME     a named configuration
  --set key=value   override one configuration value (repeatable; value parsed as JSON when it can be)
  --json            machine-readable output on stdout
`;

export const helpText = <C, R>(definition: PipelineDefinition<C, R>): string => {
  const extra = Object.values(definition.commands ?? {})
    .map((c) => `  ${c.usage.padEnd(17)} ${c.description}`)
    .join("\n");
  const options =
    definition.options.length === 0
      ? ""
      : `\n${definition.name} options:\n${definition.options
          .map((o) => `  --${o.name.padEnd(15)} ${o.description}${o.env ? ` (env ${o.env})` : ""}`)
          .join("\n")}\n`;
  return HELP(extra) + options;
};
