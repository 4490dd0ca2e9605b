/**
 * A configuration as a lock file records it (preset, the --config file's contents, --set assignments, and the
 * definition flags that change it), and its reconstruction: from the command line, or from a lock with the command
 * line's overrides.
 */
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Effect } from "effect";
import type { FlagSpecs } from "../commands/args.ts";
import { attempt, UsageError, type UserError } from "../commands/errors.ts";
import type { CommandContext } from "../commands/context.ts";
import { deepMerge, loadConfig } from "../config.ts";
import type { OptionValues, PipelineDefinition } from "../definition.ts";
import type { SlurmSettings } from "../executor/slurm.ts";
import { canonicalJson } from "../hash.ts";
import type { ConfigSourcesJson, LockFile } from "./lockfile.ts";

type Json = Record<string, unknown>;

const isPlainObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The definition options that change the configuration: those whose value alone makes `configure` return something
 * else than without it, on the configuration they apply to. Environment flags (data and cache directories, backend)
 * change nothing there and are left out of a lock.
 */
const configOptions = <C, R>(
  definition: PipelineDefinition<C, R>,
  base: Json,
  options: OptionValues,
): Record<string, string> => {
  const without = canonicalJson(definition.configure(base, {}));
  const affecting: Record<string, string> = {};
  for (const [name, value] of Object.entries(options)) {
    if (value !== undefined && canonicalJson(definition.configure(base, { [name]: value })) !== without)
      affecting[name] = value;
  }
  return affecting;
};

/** Defaults <- preset <- config contents: what `configure` is applied to. */
const baseConfig = <C, R>(definition: PipelineDefinition<C, R>, preset: string | null, config: Json | null): Json => {
  let base: Json = { ...definition.defaultConfig };
  const presetValues = preset === null ? undefined : definition.presets[preset];
  if (presetValues !== undefined) base = deepMerge(base, presetValues);
  return config === null ? base : deepMerge(base, config);
};

/** A --config file's contents, inlined into a lock; every problem is one line. */
const readJsonObject = (file: string): Effect.Effect<Json, UsageError> =>
  Effect.suspend(() => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
      const problem = (e as Error).message.split("\n")[0];
      return Effect.fail(new UsageError({ message: `cannot read config file ${file} as JSON: ${problem}` }));
    }
    if (!isPlainObject(parsed))
      return Effect.fail(new UsageError({ message: `config file ${file} must hold a JSON object` }));
    return Effect.succeed(parsed);
  });

export interface ResolvedConfig<C> {
  readonly config: C;
  /** The definition's flags for the stages' layer. */
  readonly options: OptionValues;
}

/**
 * The command's configuration sources (the config file read and inlined; see Configuration), validated, with the
 * configuration and the Slurm executor's settings they give.
 */
export const sourcesFromFlags = <C, R, S extends FlagSpecs>(
  ctx: CommandContext<C, R, S>,
): Effect.Effect<
  ResolvedConfig<C> & { readonly sources: ConfigSourcesJson; readonly slurm: SlurmSettings },
  UserError
> =>
  Effect.gen(function* () {
    const { definition, options } = ctx;
    const preset = ctx.configuration.preset ?? definition.defaultPreset ?? null;
    const configFile = ctx.configuration.configFile;
    const assignments = ctx.configuration.set;
    const { config, slurm } = yield* attempt(() =>
      loadConfig(definition, { preset: preset ?? undefined, configFile, assignments, options }),
    );
    const inline = configFile === undefined ? null : yield* readJsonObject(configFile);
    const affecting = configOptions(definition, baseConfig(definition, preset, inline), options);
    return { sources: { preset, config: inline, set: assignments, options: affecting }, config, options, slurm };
  });

/**
 * The configuration of a lock, with what the command line overrides (preset, config, --set, config-changing flags),
 * and those overrides as flags for a note. An inline config is written to `scratch` for loadConfig to read.
 */
export const lockedConfig = <C, R, S extends FlagSpecs>(
  ctx: CommandContext<C, R, S>,
  lock: LockFile,
  scratch: string,
): Effect.Effect<ResolvedConfig<C> & { readonly overrides: ReadonlyArray<string> }, UserError> =>
  Effect.gen(function* () {
    const { definition, common: flags } = ctx;
    const locked = lock.configSources;
    const explicit = Object.fromEntries(Object.entries(ctx.givenOptions).filter(([, v]) => v !== undefined));
    const configOverride = flags.config === undefined ? null : yield* readJsonObject(flags.config);
    const sources: ConfigSourcesJson = {
      preset: flags.preset ?? locked.preset,
      config: configOverride ?? locked.config,
      set: [...locked.set, ...flags.set],
      options: {
        ...locked.options,
        ...configOptions(definition, baseConfig(definition, locked.preset, locked.config), explicit),
      },
    };
    const overrides = [
      ...(flags.preset === undefined ? [] : [`--preset ${flags.preset}`]),
      ...(flags.config === undefined ? [] : [`--config ${flags.config}`]),
      ...flags.set.map((s) => `--set ${s}`),
      ...Object.entries(sources.options)
        .filter(([name, v]) => locked.options[name] !== v)
        .map(([name, v]) => `--${name} ${v}`),
    ];
    const options: OptionValues = { ...ctx.options, ...sources.options };
    let configFile: string | undefined;
    if (sources.config !== null) {
      const file = join(scratch, "locked-config.json");
      yield* Effect.promise(() => writeFile(file, JSON.stringify(sources.config)));
      configFile = file;
    }
    const { config } = yield* attempt(() =>
      loadConfig(definition, { preset: sources.preset ?? undefined, configFile, assignments: sources.set, options }),
    );
    return { config, options, overrides };
  });
