/**
 * A small typed command-line parser over node:util's parseArgs: a command declares its flags once, and reads them
 * back typed by that declaration (strings, repeated strings, booleans). A pipeline definition's own flags
 * (`--dataset`, `--data-dir`, ...) are read as {@link OptionValues}: the flag, else its environment variable.
 */
import { parseArgs } from "node:util";
import { Effect } from "effect";
import type { OptionValues, PipelineDefinition } from "../definition.ts";
import { didYouMean } from "../suggest.ts";
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

/**
 * Flags of the commands that use a remote cache (run, status, push, pull): `--remote URL` (else env PIPELINE_REMOTE)
 * and `--remote-upload=false` to only read from it.
 */
export const REMOTE_FLAGS = {
  remote: { type: "string" },
  "remote-upload": { type: "string" },
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

/**
 * Parses `command`'s `argv` strictly against the common flags, the command's and the definition's; a mistake (an
 * unknown option, a missing value) is one line, with the nearest known option when one is close.
 */
export const parseCommandArgs = <S extends FlagSpecs, C, R>(
  command: string,
  spec: S,
  definition: PipelineDefinition<C, R>,
  argv: ReadonlyArray<string>,
): Effect.Effect<ParsedArgs<S>, UsageError> =>
  Effect.suspend(() => {
    const definitionFlags = Object.fromEntries(
      definition.options.map((o) => [o.name, { type: o.boolean === true ? "boolean" : "string" } as const]),
    );
    const all: FlagSpecs = { ...COMMON_FLAGS, ...spec, ...definitionFlags };
    // Not strict: node's strict mode refuses `--jobs -1` as ambiguous and words its errors for node's own users;
    // each option is checked below instead, in this tool's words.
    const parsed = parseArgs({ args: [...argv], options: all, allowPositionals: true, strict: false, tokens: true });
    for (const token of parsed.tokens) {
      const mistake = token.kind === "option" ? optionMistake(token, all, command) : undefined;
      if (mistake !== undefined) return Effect.fail(new UsageError({ message: mistake }));
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

/** One option as parseArgs read it without strict checks. */
interface OptionToken {
  readonly name: string;
  readonly rawName: string;
  readonly value?: string | undefined;
  readonly inlineValue?: boolean | undefined;
}

/** A value that reads as a negative number: `--jobs -1` gives it to --jobs, whose own check then names it. */
const NEGATIVE_NUMBER = /^-\.?\d/;

/** What is wrong with one option of `command`'s command line, in one line; undefined when nothing is. */
const optionMistake = (token: OptionToken, specs: FlagSpecs, command: string): string | undefined => {
  const spec = specs[token.name];
  const flag = `--${token.name}`;
  if (spec === undefined) {
    const hint = didYouMean(
      token.rawName,
      Object.keys(specs).map((name) => `--${name}`),
    );
    return `unknown option "${token.rawName}" for ${command}${hint || ` (see pipeline help ${command})`}`;
  }
  if (spec.type === "boolean") {
    return token.value === undefined ? undefined : `${flag} takes no value, got "${token.value}"`;
  }
  if (token.value === undefined) return `${flag} expects a value`;
  if (token.inlineValue !== true && token.value.startsWith("-") && !NEGATIVE_NUMBER.test(token.value)) {
    // Most likely the value was forgotten and the next option taken for it.
    return `${flag} expects a value, got the option "${token.value}" (write ${flag}=${token.value} if it is the value)`;
  }
  return undefined;
};

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
