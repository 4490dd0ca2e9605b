/**
 * A small typed command-line parser over node:util's parseArgs: a command declares its flags once, and reads them
 * back typed by that declaration (strings, repeated strings, booleans). A pipeline definition's own flags
 * (`--dataset`, `--data-dir`, ...) are read as {@link OptionValues}: the flag, else its environment variable.
 */
import { parseArgs } from "node:util";
import { Effect } from "effect";
import type { OptionValues, PipelineDefinition } from "../definition.ts";
import { UsageError } from "./errors.ts";

export interface FlagSpec {
  readonly type: "string" | "boolean";
  readonly multiple?: true;
  readonly short?: string;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

type FlagValue<S extends FlagSpec> = S["type"] extends "boolean"
  ? boolean
  : S["multiple"] extends true
    ? ReadonlyArray<string>
    : string | undefined;

/** The values of the declared flags: false / [] / undefined when absent. */
export type Flags<S extends FlagSpecs> = { readonly [K in keyof S]: FlagValue<S[K]> };

/** Flags every command accepts. */
export const COMMON_FLAGS = {
  "cache-dir": { type: "string" },
  config: { type: "string" },
  preset: { type: "string" },
  set: { type: "string", multiple: true },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies FlagSpecs;

export interface ParsedArgs<S extends FlagSpecs> {
  /** The flags every command has (--cache-dir, --config, --preset, --set, --json, --help). */
  readonly common: Flags<typeof COMMON_FLAGS>;
  /** The command's own flags. */
  readonly flags: Flags<S>;
  readonly positionals: ReadonlyArray<string>;
  /** The definition's flags as the stages' layer and `configure` see them: the flag, else its environment variable. */
  readonly options: OptionValues;
  /** The definition's flags given on this command line (no environment). */
  readonly givenOptions: OptionValues;
}

/** Parses `argv` strictly against the common flags, the command's and the definition's; a mistake is one line. */
export const parseCommandArgs = <S extends FlagSpecs, C, R>(
  spec: S,
  definition: PipelineDefinition<C, R>,
  argv: ReadonlyArray<string>,
): Effect.Effect<ParsedArgs<S>, UsageError> =>
  Effect.suspend(() => {
    const definitionFlags = Object.fromEntries(
      definition.options.map((o) => [o.name, { type: o.boolean === true ? "boolean" : "string" } as const]),
    );
    const all: FlagSpecs = { ...COMMON_FLAGS, ...spec, ...definitionFlags };
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({ args: [...argv], options: all, allowPositionals: true, strict: true });
    } catch (e) {
      return Effect.fail(new UsageError({ message: (e as Error).message.split("\n")[0]! }));
    }
    const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
    const read = (specs: FlagSpecs): Record<string, unknown> =>
      Object.fromEntries(
        Object.entries(specs).map(([name, s]) => {
          const value = values[name];
          return [name, s.type === "boolean" ? value === true : s.multiple === true ? (value ?? []) : value];
        }),
      );
    const given: Record<string, string | undefined> = {};
    const options: Record<string, string | undefined> = {};
    for (const o of definition.options) {
      const value = values[o.name];
      given[o.name] = value === true ? "true" : typeof value === "string" ? value : undefined;
      options[o.name] = given[o.name] ?? (o.env === undefined ? undefined : process.env[o.env]);
    }
    // The casts: each record was read from the same declaration that types it.
    return Effect.succeed({
      common: read(COMMON_FLAGS) as Flags<typeof COMMON_FLAGS>,
      flags: read(spec) as Flags<S>,
      positionals: parsed.positionals,
      options,
      givenOptions: given,
    });
  });

/** `raw` as a positive (or, with allowZero, non-negative) integer; `fallback` when absent. */
export const positiveInt = (
  raw: string | undefined,
  flag: string,
  fallback: number,
  allowZero = false,
): Effect.Effect<number, UsageError> => {
  if (raw === undefined) return Effect.succeed(fallback);
  const n = Number(raw);
  if (Number.isInteger(n) && n >= (allowZero ? 0 : 1)) return Effect.succeed(n);
  const kind = allowZero ? "non-negative" : "positive";
  return Effect.fail(new UsageError({ message: `${flag} expects a ${kind} integer, got "${raw}"` }));
};
