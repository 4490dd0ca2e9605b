/**
 * The mistakes a user can make, as typed errors: each ends the command with one line on stderr and exit code 2.
 * Exit codes are assigned in one place, pipeline/cli.ts's exitCode.
 */
import { statSync, type Stats } from "node:fs";
import * as path from "node:path";
import { Data, Effect } from "effect";
import { errnoCode } from "../../cache/fsutil.ts";
import type { StoreError } from "../../cache/service.ts";
import type { ConfigError } from "../config.ts";
import type { GraphError } from "../graph.ts";
import type { SqlError } from "../sql.ts";

/** A mistake in how the command was called. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

/** A folder the user chose (--cache-dir, --out) cannot be written: its path, Node's code, and what to do. */
export class FileSystemError extends Data.TaggedError("FileSystemError")<{
  readonly message: string;
  readonly path: string;
  readonly code: string;
}> {}

/**
 * Every failure a command reports to the user in one line: its calling, configuration, target, query, or a cache it
 * cannot use (e.g. a --cache-dir that cannot be created).
 */
export type UserError = UsageError | ConfigError | GraphError | SqlError | StoreError | FileSystemError;

const USER_ERROR_TAGS: ReadonlySet<string> = new Set([
  "UsageError",
  "ConfigError",
  "GraphError",
  "SqlError",
  "StoreError",
  "FileSystemError",
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

/** The stats of `file`, or undefined when it cannot be reached (missing, or below a file). */
const statOrUndefined = (file: string): Stats | undefined => {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
};

/** The nearest existing ancestor of `target` when it is a file (what ENOTDIR stumbled on), else undefined. */
const fileInTheWay = (target: string): string | undefined => {
  for (let dir = path.dirname(target); ; dir = path.dirname(dir)) {
    const stats = statOrUndefined(dir);
    if (stats !== undefined) return stats.isDirectory() ? undefined : dir;
    if (path.dirname(dir) === dir) return undefined;
  }
};

/** The path Node's error names (e.g. the one mkdir found taken), else `fallback`. */
const erroredPath = (error: unknown, fallback: string): string =>
  typeof error === "object" && error !== null && "path" in error && typeof error.path === "string"
    ? path.resolve(error.path)
    : fallback;

/**
 * Node's error writing a folder the user chose, as one line naming the folder, the cause and what to do, e.g.
 * `cannot write the cache at /x: permission denied (EACCES); fix its permissions or choose another --cache-dir`.
 * `what` names the folder's role ("the cache"), `flag` the option that chooses it, `recovery` what the user keeps
 * (e.g. that nothing half-written was cached). Undefined for an error that is not one of these filesystem causes.
 */
export const fileSystemError = (
  error: unknown,
  where: { readonly what: string; readonly dir: string; readonly flag: string; readonly recovery: string },
): FileSystemError | undefined => {
  const code = errnoCode(error);
  if (code === undefined) return undefined;
  const dir = path.resolve(where.dir);
  const another = `choose another ${where.flag}`;
  const cause = ((): string | undefined => {
    switch (code) {
      case "EACCES":
      case "EPERM":
        return `permission denied (${code}); fix its permissions or ${another}`;
      case "EROFS":
        return `it is on a read-only file system (EROFS); ${another}`;
      case "EEXIST":
      case "ENOTDIR": {
        const failed = erroredPath(error, dir);
        const file = code === "EEXIST" ? failed : (fileInTheWay(failed) ?? "a part of the path");
        return `${file} is a file, not a folder (${code}); ${another} or move the file away`;
      }
      case "ENOSPC":
      case "EDQUOT":
        return `no space left on the device (${code}); ${where.recovery}; free some space or ${another}`;
      default:
        return undefined;
    }
  })();
  return cause === undefined
    ? undefined
    : new FileSystemError({ message: `cannot write ${where.what} at ${dir}: ${cause}`, path: dir, code });
};
