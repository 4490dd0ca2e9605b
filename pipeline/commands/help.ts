/**
 * The help texts: `pipeline --help` (every command in one line each) and `pipeline help CMD` / `pipeline CMD --help`
 * (one command's usage, options and examples), with the commands and flags a pipeline definition adds.
 */
import type { PipelineDefinition } from "../definition.ts";

/** One built-in command's help; its options must be exactly the flags the command declares (tested). */
interface CommandHelp {
  /** What follows `pipeline` on the usage line, e.g. `run TARGET`. */
  readonly synopsis: string;
  readonly summary: string;
  /** [how the option is written, what it does]; the flag's name is the first `--name` in the first element. */
  readonly options: ReadonlyArray<readonly [string, string]>;
  /** Example command lines (after `pipeline`), from a target and a preset of the definition. */
  readonly examples: (names: ExampleNames) => ReadonlyArray<string>;
}

/** Names the examples use, taken from the definition so that every example runs as shown. */
interface ExampleNames {
  /** The last stage: the one whose target reaches most of the graph. */
  readonly stage: string;
  /** ` --preset NAME` for the default or first preset, or "" for a definition without presets. */
  readonly preset: string;
}

/** The options of the commands that use a remote cache (REMOTE_FLAGS). */
const REMOTE_OPTIONS: ReadonlyArray<readonly [string, string]> = [
  [
    "--remote URL",
    "remote cache: s3://bucket/prefix[?endpoint=URL&region=R] or file:///path (env PIPELINE_REMOTE); AWS " +
      "credentials come from the standard AWS environment and config files",
  ],
  ["--remote-upload B", "true (default) or false: upload what this command computes, or only read the remote"],
];

const COMMAND_HELP: Readonly<Record<string, CommandHelp>> = {
  run: {
    synopsis: "run TARGET",
    summary: "compute TARGET (a stage name, stage[label], or all), reusing cached artifacts",
    options: [
      ["--dry-run", "show what would run and why, compute nothing"],
      ["--force STAGE", "recompute STAGE's nodes even when cached (repeatable)"],
      ["-j, --jobs N", "nodes computed at once (default 2)"],
      ["--gpus N", "nodes that may use a GPU at once (default 1)"],
      ["--out DIR", "copy the target's artifacts to DIR"],
      [
        "--executor E",
        "local (the default) or slurm: each node a Slurm job, --jobs of them in flight (default 100); " +
          "docs/cluster.md (env PIPELINE_EXECUTOR)",
      ],
      ["--retries N", "with --executor slurm: resubmit a job that ended without its artifact up to N times"],
      ...REMOTE_OPTIONS,
    ],
    examples: ({ stage, preset }) => [
      `run all${preset}`,
      `run ${stage} --dry-run`,
      `run all${preset} --remote s3://bucket/cache --remote-upload=false`,
    ],
  },
  status: {
    synopsis: "status [TARGET]",
    summary:
      "list what is cached and what is stale, and why, for TARGET (default all); with --remote: local, " +
      "remote-only or missing",
    options: [...REMOTE_OPTIONS],
    examples: ({ preset }) => [`status${preset}`, "status all --json", "status all --remote file:///mnt/shared/cache"],
  },
  dag: {
    synopsis: "dag [TARGET]",
    summary: "print the graph of TARGET (default all)",
    options: [["--format F", "text, mermaid or dot (default text)"]],
    examples: ({ stage }) => [`dag ${stage}`, "dag all --format mermaid"],
  },
  inspect: {
    synopsis: "inspect REF...",
    summary: "show an artifact (REF: a key prefix, a node id or STAGE:label), or query tables with --sql",
    options: [
      ["--rows N", "table rows to show (default 5; with --sql, all)"],
      ["--list", "list every cached artifact"],
      [
        "--sql QUERY",
        "run a read-only SELECT (DuckDB) over the REFs' tables: a view per artifact, and per stage of several REFs " +
          "one view with the nodes' parameters as columns",
      ],
      ["--format F", "--sql's output: table, csv or json (default table)"],
    ],
    examples: ({ stage }) => ["inspect --list", `inspect ${stage} --rows 10`],
  },
  gc: {
    synopsis: "gc",
    summary:
      "list (by node and size) the artifacts that neither the current configuration, a lock file of the project, " +
      "the last runs nor a running process reaches; remove them with --force",
    options: [
      ["--force", "remove them (in a terminal, gc asks instead)"],
      ["--keep-runs N", "keep what the last N runs reached (default 5; reruns of one configuration count once)"],
      ["--dry-run", "only list, never ask or remove"],
    ],
    examples: () => ["gc", "gc --force --keep-runs 1"],
  },
  lock: {
    synopsis: "lock TARGET",
    summary: "pin TARGET's configuration, node keys and artifact sha256s in a JSON lock file (all cached)",
    options: [
      ["--out FILE", "the lock file to write (default pipeline.lock.json)"],
      ["--force", "replace a lock file of another target or configuration, or one that cannot be read"],
      ["--check", "write nothing: list how the lock file differs from what it would pin now (exit 1 if it does)"],
    ],
    examples: ({ preset }) => [`lock all${preset}`, "lock all --out other.lock.json"],
  },
  init: {
    synopsis: "init",
    summary:
      "make the current folder a project: write pipeline.config.json with the configuration given (--preset, " +
      "--set, --config), which the other commands then use; the cache goes to .pipeline/cache",
    options: [],
    examples: ({ preset }) => [`init${preset}`, `init${preset} --set seeds=[0,1]`],
  },
  params: {
    synopsis: "params diff [LOCK|REV]",
    summary:
      "show how the current configuration differs from a lock file's (default pipeline.lock.json), from " +
      "pipeline.config.json at a git revision, or from the last run's: one line per parameter",
    options: [["--last-run", "compare with the configuration of the last run"]],
    examples: () => ["params diff", "params diff HEAD~1", "params diff --last-run"],
  },
  replay: {
    synopsis: "replay [TARGET] --check",
    summary: "recompute TARGET in a temporary cache and compare every node; exit 1 on any difference",
    options: [
      ["--check", "required: recompute and compare"],
      ["--lock FILE", "compare with FILE (and take its target and configuration) instead of the cache"],
      ["--keep", "keep the temporary cache (its path is printed) instead of removing it"],
      ["-j, --jobs N", "nodes computed at once (default 2)"],
      ["--gpus N", "nodes that may use a GPU at once (default 1)"],
      ...REMOTE_OPTIONS.map(([form, what]) =>
        form === "--remote URL"
          ? ([form, `fetch from this remote cache instead of recomputing; ${what}`] as const)
          : ([form, "ignored: replay never uploads"] as const),
      ),
    ],
    examples: ({ stage }) => [
      "replay --check --lock pipeline.lock.json",
      `replay ${stage} --check`,
      "replay --check --lock pipeline.lock.json --remote s3://bucket/cache",
    ],
  },
  push: {
    synopsis: "push TARGET",
    summary: "upload TARGET's locally cached artifacts to the remote cache (blobs first, then entries)",
    options: [...REMOTE_OPTIONS],
    examples: ({ preset }) => [`push all${preset} --remote s3://bucket/cache`],
  },
  pull: {
    synopsis: "pull TARGET",
    summary: "fetch TARGET's artifacts that are not local from the remote cache (each blob verified), compute nothing",
    options: [...REMOTE_OPTIONS],
    examples: ({ preset }) => [`pull all${preset} --remote s3://bucket/cache`],
  },
};

const COMMON_OPTIONS: ReadonlyArray<readonly [string, string]> = [
  ["--cache-dir DIR", "artifact store (env PIPELINE_CACHE_DIR, default .pipeline/cache in the project root)"],
  ["--config FILE", "JSON configuration merged over the defaults or --preset (instead of the project's configuration)"],
  ["--preset NAME", "a named configuration (instead of the project's configuration)"],
  ["--set key=value", "override one configuration value (repeatable; JSON when it parses), after the project's"],
  ["--json", "machine-readable output on stdout"],
  ["-h, --help", "this help"],
];

/** The flag names (without dashes) a built-in command's help documents, to check them against its declaration. */
export const documentedFlags = (command: string): ReadonlyArray<string> =>
  (COMMAND_HELP[command]?.options ?? []).map(([form]) => /--([\w-]+)/.exec(form)![1]!);

const optionLines = (options: ReadonlyArray<readonly [string, string]>): string =>
  options.map(([form, what]) => `  ${form.padEnd(17)} ${what}\n`).join("");

const definitionOptions = <C, R>(definition: PipelineDefinition<C, R>): string =>
  definition.options.length === 0
    ? ""
    : `\n${definition.name} options:\n${optionLines(
        definition.options.map((o) => [`--${o.name}`, `${o.description}${o.env ? ` (env ${o.env})` : ""}`]),
      )}`;

/** `pipeline --help`: every command in one line, the common options and the definition's. */
export const helpText = <C, R>(definition: PipelineDefinition<C, R>): string => {
  const commands = [
    ...Object.values(COMMAND_HELP).map((c) => [c.synopsis, c.summary] as const),
    ...Object.values(definition.commands ?? {}).map((c) => [c.usage, c.description] as const),
  ];
  return (
    "usage: pipeline <command> [options]\n\ncommands:\n" +
    commands.map(([synopsis, summary]) => `  ${synopsis.padEnd(24)} ${summary}\n`).join("") +
    "\n`pipeline help COMMAND` (or `pipeline COMMAND --help`) shows a command's options and examples.\n" +
    "\ncommon options:\n" +
    optionLines(COMMON_OPTIONS) +
    optionLines([["-V, --version", "print the version"]]) +
    definitionOptions(definition)
  );
};

/** `pipeline help COMMAND`: its usage line, summary, options, the common options and examples; undefined if unknown. */
export const commandHelpText = <C, R>(definition: PipelineDefinition<C, R>, command: string): string | undefined => {
  const own = definition.commands?.[command];
  if (own !== undefined) return `usage: pipeline ${own.usage}\n\n${own.description}\n`;
  const help = COMMAND_HELP[command];
  if (help === undefined) return undefined;
  const presets = Object.keys(definition.presets);
  const preset = definition.defaultPreset ?? presets[0];
  const names: ExampleNames = {
    stage: definition.stages.at(-1)?.name ?? "all",
    preset: preset === undefined ? "" : ` --preset ${preset}`,
  };
  const options = help.options.length === 0 ? "" : `\noptions:\n${optionLines(help.options)}`;
  return (
    `usage: pipeline ${help.synopsis} [options]\n\n${help.summary}\n` +
    options +
    `\ncommon options:\n${optionLines(COMMON_OPTIONS)}` +
    definitionOptions(definition) +
    `\nexamples:\n${help
      .examples(names)
      .map((e) => `  pipeline ${e}\n`)
      .join("")}`
  );
};
