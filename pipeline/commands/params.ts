/**
 * `pipeline params diff [LOCK|REV] [--last-run]`: how the current configuration differs, one line per parameter
 * (`path old -> new`), from a lock file's (default pipeline.lock.json), from the project file at a git revision, or
 * from the last run's.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { Effect } from "effect";
import { loadConfig, type ConfigSources } from "../config.ts";
import { diffKeys } from "../plan.ts";
import { DEFAULT_LOCK_FILE, readLockFile, type ConfigSourcesJson } from "../replay/lockfile.ts";
import { runRecords } from "../runs.ts";
import { errorMessage } from "../stage.ts";
import { parseProjectSettings, PROJECT_FILE } from "../workspace.ts";
import { defineCommand, type CommandContext } from "./context.ts";
import { attempt, UsageError, type UserError } from "./errors.ts";

const FLAGS = { "last-run": { type: "boolean" } } as const;

type ParamsContext<C, R> = CommandContext<C, R, typeof FLAGS>;

export const params = defineCommand({
  name: "params",
  flags: FLAGS,
  store: "none",
  run: (ctx) =>
    Effect.gen(function* () {
      const [action, ref, extra] = ctx.positionals;
      if (action !== "diff")
        return yield* new UsageError({ message: "params needs the action diff: pipeline params diff [LOCK|REV]" });
      if (extra !== undefined || (ref !== undefined && ctx.flags["last-run"]))
        return yield* new UsageError({
          message: "params diff compares with one of: a lock file, a git revision, --last-run",
        });
      const reference = yield* referenceSources(ctx, ref);
      const before = yield* attempt(() => loadConfig(ctx.definition, reference.sources).encoded);
      const now = yield* attempt(
        () =>
          loadConfig(ctx.definition, {
            preset: ctx.configuration.preset,
            configFile: ctx.configuration.configFile,
            assignments: ctx.configuration.set,
            options: ctx.options,
          }).encoded,
      );
      const lines = diffKeys(before, now);
      ctx.err.write(`params diff: ${reference.name} -> the current configuration\n`);
      ctx.out.write(lines.length === 0 ? "no differences\n" : `${lines.join("\n")}\n`);
      return 0;
    }),
});

/** loadConfig's sources for a configuration as a lock or run record keeps it. */
const fromRecorded = (recorded: ConfigSourcesJson): ConfigSources => ({
  preset: recorded.preset ?? undefined,
  inlineConfig: recorded.config ?? undefined,
  assignments: recorded.set,
  options: recorded.options,
});

/** The configuration to compare with: --last-run, a lock file (REF an existing file, or none), or a git revision. */
const referenceSources = <C, R>(
  ctx: ParamsContext<C, R>,
  ref: string | undefined,
): Effect.Effect<{ readonly name: string; readonly sources: ConfigSources }, UserError> =>
  Effect.gen(function* () {
    const root = ctx.project?.root;
    if (ctx.flags["last-run"]) {
      if (root === undefined) return yield* new UsageError({ message: "--last-run needs a project (pipeline init)" });
      const [last] = yield* Effect.promise(() => runRecords(root));
      if (last === undefined) return yield* new UsageError({ message: `no run recorded in ${root} yet` });
      const name = `the last run (${last.record.target}, ${last.record.startedAt})`;
      return { name, sources: fromRecorded(last.record.configSources) };
    }
    const lockFile = ref ?? path.join(root ?? ".", DEFAULT_LOCK_FILE);
    if (ref === undefined || existsSync(ref)) {
      const lock = yield* readLockFile(lockFile);
      return { name: `lock ${lockFile} (${lock.target})`, sources: fromRecorded(lock.configSources) };
    }
    if (root === undefined)
      return yield* new UsageError({ message: `${ref} is no file, and outside a project no git revision is read` });
    return { name: `${PROJECT_FILE} at ${ref}`, sources: yield* sourcesAtRevision(root, ref) };
  });

/** The project file (and the config file it names) as they were at git revision `rev`. */
const sourcesAtRevision = (root: string, rev: string): Effect.Effect<ConfigSources, UserError> =>
  Effect.gen(function* () {
    const show = (file: string) =>
      Effect.try({
        try: () =>
          execFileSync("git", ["show", `${rev}:./${file}`], {
            cwd: root,
            encoding: "utf8",
            stdio: ["ignore", "pipe", "pipe"],
          }),
        catch: (e) => {
          // execFileSync's error carries git's stderr (a string, with encoding set); its first line says why.
          const { stderr } = e as { stderr?: string };
          const why = stderr?.trim().split("\n")[0] || errorMessage(e);
          return new UsageError({ message: `cannot read ${file} at git revision ${rev}: ${why}` });
        },
      });
    const text = yield* show(PROJECT_FILE);
    const settings = yield* attempt(() => parseProjectSettings(text, `${PROJECT_FILE} at ${rev}`));
    let inlineConfig: Record<string, unknown> | undefined;
    if (settings.config !== undefined) {
      const configText = yield* show(path.posix.normalize(settings.config));
      const parsed = yield* Effect.try({
        try: (): unknown => JSON.parse(configText),
        catch: () => new UsageError({ message: `${settings.config} at git revision ${rev} is not valid JSON` }),
      });
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
        return yield* new UsageError({ message: `${settings.config} at git revision ${rev} must hold a JSON object` });
      inlineConfig = parsed as Record<string, unknown>;
    }
    return { preset: settings.preset, inlineConfig, assignments: settings.set ?? [] };
  });
