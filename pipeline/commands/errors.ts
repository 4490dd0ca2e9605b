/**
 * The mistakes a user can make, as typed errors: each ends the command with one line on stderr and exit code 2.
 * Exit codes are assigned in one place, pipeline/cli.ts's exitCode.
 */
import { Data, Effect } from "effect";
import type { StoreError } from "../../cache/service.ts";
import type { ConfigError } from "../config.ts";
import type { GraphError } from "../graph.ts";
import type { SqlError } from "../sql.ts";

/** A mistake in how the command was called. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

/**
 * Every failure a command reports to the user in one line: its calling, configuration, target, query, or a cache it
 * cannot use (e.g. a --cache-dir that cannot be created).
 */
export type UserError = UsageError | ConfigError | GraphError | SqlError | StoreError;

const USER_ERROR_TAGS: ReadonlySet<string> = new Set([
  "UsageError",
  "ConfigError",
  "GraphError",
  "SqlError",
  "StoreError",
]);

export const isUserError = (e: unknown): e is UserError =>
  typeof e === "object" && e !== null && "_tag" in e && USER_ERROR_TAGS.has(String(e._tag));

/**
 * Runs code that reports user mistakes by throwing (loadConfig, buildDag, a definition's configure): those become
 * typed failures, anything else a defect.
 */
export const attempt = <A>(f: () => A): Effect.Effect<A, UserError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(f());
    } catch (e) {
      return isUserError(e) ? Effect.fail(e) : Effect.die(e);
    }
  });

/** Like {@link attempt} for promises (querySql). */
export const attemptPromise = <A>(f: () => Promise<A>): Effect.Effect<A, UserError> =>
  Effect.tryPromise({ try: f, catch: (e) => e }).pipe(
    Effect.catchAll((e) => (isUserError(e) ? Effect.fail(e) : Effect.die(e))),
  );
