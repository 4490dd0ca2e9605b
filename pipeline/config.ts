/**
 * Configuration assembly: defaults <- preset <- config file <- definition flags <- `--set key=value`, then schema
 * decoding. The `slurm` section is the engine's own (the Slurm executor's settings), decoded apart from the
 * pipeline's configuration.
 */
import { readFileSync } from "node:fs";
import { Data, Either, ParseResult, Schema } from "effect";
import type { OptionValues, PipelineDefinition } from "./definition.ts";
import { SlurmSettings } from "./executor/slurm.ts";
import { didYouMean } from "./suggest.ts";

/** A user mistake in the configuration: printed as one line, never a stack trace. */
export class ConfigError extends Data.TaggedError("ConfigError")<{ readonly message: string }> {}

type Json = Record<string, unknown>;

const isPlainObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Deep-merges `over` into `base`: objects merge key by key, everything else (arrays included) replaces. */
export const deepMerge = (base: Json, over: Json): Json => {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
};

/** Parses `a.b.c=value`; the value is read as JSON when it parses (numbers, arrays, booleans), else as a string. */
export const parseAssignment = (assignment: string): Json => {
  const eq = assignment.indexOf("=");
  if (eq <= 0) throw new ConfigError({ message: `--set expects key=value, got "${assignment}"` });
  const path = assignment.slice(0, eq).split(".");
  if (path.some((p) => p === ""))
    throw new ConfigError({ message: `--set has an empty key segment in "${assignment}"` });
  const raw = assignment.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    value = raw;
  }
  return path.reduceRight<unknown>((acc, key) => ({ [key]: acc }), value) as Json;
};

export interface ConfigSources {
  readonly preset?: string | undefined;
  readonly configFile?: string | undefined;
  /** A configuration file's contents given inline (as a lock or run record keeps them), merged where it would be. */
  readonly inlineConfig?: Json | undefined;
  readonly assignments?: ReadonlyArray<string>;
  readonly options?: OptionValues;
}

/**
 * Builds and decodes the configuration and the Slurm executor's settings; throws ConfigError with a readable message
 * on bad input.
 */
export const loadConfig = <C, R>(
  definition: PipelineDefinition<C, R>,
  sources: ConfigSources,
): { config: C; encoded: Json; slurm: SlurmSettings } => {
  let encoded: Json = { ...definition.defaultConfig };
  const presetName = sources.preset ?? definition.defaultPreset;
  if (presetName !== undefined) {
    const preset = definition.presets[presetName];
    if (preset === undefined) {
      const known = Object.keys(definition.presets);
      const hint = didYouMean(presetName, known) || ` (known: ${known.join(", ")})`;
      throw new ConfigError({ message: `unknown preset "${presetName}"${hint}` });
    }
    encoded = deepMerge(encoded, preset);
  }
  if (sources.configFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(sources.configFile, "utf8");
    } catch {
      throw new ConfigError({ message: `cannot read config file ${sources.configFile}` });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new ConfigError({
        message: `config file ${sources.configFile} is not valid JSON: ${(e as Error).message}`,
      });
    }
    if (!isPlainObject(parsed))
      throw new ConfigError({ message: `config file ${sources.configFile} must hold a JSON object` });
    encoded = deepMerge(encoded, parsed);
  }
  if (sources.inlineConfig !== undefined) encoded = deepMerge(encoded, sources.inlineConfig);
  encoded = definition.configure(encoded, sources.options ?? {});
  for (const assignment of sources.assignments ?? []) encoded = deepMerge(encoded, parseAssignment(assignment));
  const { slurm, ...pipelineConfig } = encoded;
  const decoded = Schema.decodeUnknownEither(definition.config, { onExcessProperty: "error" })(pipelineConfig);
  if (Either.isLeft(decoded))
    throw new ConfigError({ message: `invalid configuration: ${formatParseError(decoded.left)}` });
  const settings = Schema.decodeUnknownEither(SlurmSettings, { onExcessProperty: "error" })(slurm ?? {});
  if (Either.isLeft(settings))
    throw new ConfigError({ message: `invalid configuration: ${formatParseError(settings.left, "slurm")}` });
  return { config: decoded.right, encoded, slurm: settings.right };
};

/**
 * One line per problem, each with its path (below `root` when given): `train.epochs: Expected a positive number,
 * actual -1`.
 */
export const formatParseError = (error: ParseResult.ParseError, root?: string): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => {
      const at = [...(root === undefined ? [] : [root]), ...issue.path].join(".");
      return `${at === "" ? "" : `${at}: `}${issue.message}`;
    })
    .join("; ");
