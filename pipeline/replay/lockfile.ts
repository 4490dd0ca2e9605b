/**
 * The lock file (`pipeline lock`, default pipeline.lock.json): the configuration sources of a target, and per node its
 * key and the sha256 of each non-volatile artifact, as stable JSON (sorted keys, 2-space indentation).
 */
import { readFile } from "node:fs/promises";
import { Effect, Either, Schema } from "effect";
import { formatParseError } from "../config.ts";
import { UsageError } from "../commands/errors.ts";
import type { OutputSpec } from "../stage.ts";

export const DEFAULT_LOCK_FILE = "pipeline.lock.json";

const Sha256 = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{64}$/, { message: () => "expected 64 lowercase hex digits" }),
);

/** Where a configuration came from, as recorded in a lock file. */
export const ConfigSourcesSchema = Schema.Struct({
  preset: Schema.NullOr(Schema.String),
  /** The contents of the --config file, inlined so the lock does not depend on the file. */
  config: Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  set: Schema.Array(Schema.String),
  /** Definition flags that change the configuration (e.g. --dataset); environment flags are left out. */
  options: Schema.Record({ key: Schema.String, value: Schema.String }),
});
export type ConfigSourcesJson = typeof ConfigSourcesSchema.Type;

const LockSchema = Schema.Struct({
  formatVersion: Schema.Literal(1),
  tool: Schema.Struct({ name: Schema.String, version: Schema.String }),
  target: Schema.String,
  configSources: ConfigSourcesSchema,
  nodes: Schema.Record({
    key: Schema.String,
    value: Schema.Struct({
      stage: Schema.String,
      key: Sha256,
      artifacts: Schema.Record({ key: Schema.String, value: Sha256 }),
    }),
  }),
});
export type LockFile = typeof LockSchema.Type;

/** Volatile artifacts (wall times) differ between identical runs: they are neither locked nor compared. */
export const isVolatile = (spec: OutputSpec | undefined): boolean => spec?.kind === "table" && spec.volatile === true;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const sortKeys = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(sortKeys)
    : isPlainObject(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, sortKeys(v[k])]),
        )
      : v;

/** JSON with object keys sorted, 2-space indentation and a trailing newline: equal values give equal bytes. */
export const stableJson = (value: unknown): string => `${JSON.stringify(sortKeys(value), null, 2)}\n`;

/** Reads and validates a lock file; every problem is one line. */
export const readLockFile = (file: string): Effect.Effect<LockFile, UsageError> =>
  Effect.gen(function* () {
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: () => new UsageError({ message: `cannot read lock file ${file}` }),
    });
    const parsed = yield* Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: (e) => new UsageError({ message: `lock file ${file} is not valid JSON: ${(e as Error).message}` }),
    });
    const decoded = Schema.decodeUnknownEither(LockSchema)(parsed);
    if (Either.isLeft(decoded)) {
      return yield* new UsageError({ message: `malformed lock file ${file}: ${formatParseError(decoded.left)}` });
    }
    return decoded.right;
  });
