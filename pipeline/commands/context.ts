/**
 * What every command shares: the pipeline definition, its parsed arguments, the project and its configuration, the
 * output streams and the tool's identity; the store comes from the Effect context (Store), and interruption from the
 * runtime (pipeline/cli.ts).
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { Effect } from "effect";
import { openStore, openStoreReadOnly, Store, type RemoteSettings, type StoreService } from "../../cache/service.ts";
import { loadConfig } from "../config.ts";
import type { PipelineDefinition } from "../definition.ts";
import { buildDag, type Dag } from "../graph.ts";
import { defaultCacheDir, findProject, outsideProjectMessage, type Project } from "../workspace.ts";
import { parseCommandArgs, type Flags, type FlagSpecs, type ParsedArgs, type REMOTE_FLAGS } from "./args.ts";
import { attempt, fileSystemError, UsageError, type UserError } from "./errors.ts";
import { commandHelpText, helpText } from "./help.ts";

export interface Output {
  readonly out: NodeJS.WriteStream;
  readonly err: NodeJS.WriteStream;
}

export interface CommandContext<C, R, S extends FlagSpecs> extends ParsedArgs<S>, Output {
  readonly definition: PipelineDefinition<C, R>;
  /** Recorded in every manifest and lock file this run writes. */
  readonly tool: { readonly name: string; readonly version: string };
  /** The project around the current folder (see pipeline/workspace.ts); undefined outside of one. */
  readonly project: Project | undefined;
  /** The cache: --cache-dir, else PIPELINE_CACHE_DIR, else the project's; undefined outside a project. */
  readonly cacheDir: string | undefined;
  /** The configuration this command means: the project's, with the command line's overrides. */
  readonly configuration: Configuration;
}

/**
 * Where a configuration comes from: the project file's preset, config file and assignments, unless the command line
 * gives --preset or --config, which then choose another configuration (as outside a project); `--set` assignments
 * apply after either.
 */
export interface Configuration {
  readonly preset: string | undefined;
  readonly configFile: string | undefined;
  readonly set: ReadonlyArray<string>;
}

/** A command as the CLI runs it: the arguments after its name in, the exit code out. */
export interface Command {
  readonly name: string;
  /** Its own flags (beside the common ones), as its help documents them. */
  readonly flags: FlagSpecs;
  readonly run: <C, R>(
    definition: PipelineDefinition<C, R>,
    argv: ReadonlyArray<string>,
    output: Output,
  ) => Effect.Effect<number, UserError>;
}

/**
 * How a command uses the cache: "read" never creates or changes a folder (status, inspect), "write" creates the
 * cache if needed; a function decides from the flags (gc writes only with --force).
 */
export type StoreAccess<S extends FlagSpecs> = "read" | "write" | ((flags: Flags<S>) => "read" | "write");

interface CommandSpec<S extends FlagSpecs> {
  readonly name: string;
  readonly flags: S;
}

/** A command that needs the cache, and so a project (or --cache-dir). */
interface StoreCommandSpec<S extends FlagSpecs> extends CommandSpec<S> {
  readonly store: StoreAccess<S>;
  /** The command uses a remote cache: its flags include REMOTE_FLAGS, and the store comes with the remote. */
  readonly remote?: true;
  readonly run: <C, R>(ctx: CommandContext<C, R, S>) => Effect.Effect<number, UserError, Store>;
}

/** A command that needs no cache (dag): it works outside a project too. */
interface StorelessCommandSpec<S extends FlagSpecs> extends CommandSpec<S> {
  readonly store: "none";
  readonly run: <C, R>(ctx: CommandContext<C, R, S>) => Effect.Effect<number, UserError>;
}

/**
 * A command from its flags and its body. The body gets the parsed arguments typed by `flags`, the project and its
 * configuration, and the store (unless it needs none) as `store` says; its result is the exit code (0 ok, 1 a node
 * failed or differed). Outside a project, without --cache-dir, a command that needs the cache stops in one line.
 */
export const defineCommand = <S extends FlagSpecs>(
  command: StoreCommandSpec<S> | StorelessCommandSpec<S>,
): Command => ({
  name: command.name,
  flags: command.flags,
  run: (definition, argv, output) =>
    Effect.gen(function* () {
      const args = yield* parseCommandArgs(command.name, command.flags, definition, argv);
      if (args.common.help) {
        output.out.write(commandHelpText(definition, command.name) ?? helpText(definition));
        return 0;
      }
      const cwd = process.cwd();
      const found = yield* attempt(() => findProject(cwd, definition.name));
      const { project } = found;
      const cacheDir =
        args.common["cache-dir"] ??
        (process.env.PIPELINE_CACHE_DIR || undefined) ??
        (project === undefined ? undefined : defaultCacheDir(project.root));
      const ctx = {
        ...args,
        ...output,
        definition,
        tool: { name: definition.name, version: toolVersion() },
        project,
        cacheDir,
        configuration: configurationOf(args, project),
      };
      if (command.store === "none") return yield* command.run(ctx);
      if (cacheDir === undefined)
        return yield* new UsageError({ message: outsideProjectMessage(cwd, found.otherPipeline) });
      const access = typeof command.store === "function" ? command.store(args.flags) : command.store;
      const remote =
        command.remote === true
          ? yield* remoteSettings(args.flags as unknown as Flags<typeof REMOTE_FLAGS>, output, project)
          : undefined;
      return yield* command
        .run(ctx)
        .pipe(Effect.provideServiceEffect(Store, openCache(cacheDir, access, { remote, output })));
    }),
});

/** The project's configuration with the command line's overrides (see {@link Configuration}). */
const configurationOf = <S extends FlagSpecs>(args: ParsedArgs<S>, project: Project | undefined): Configuration => {
  const { preset, config, set } = args.common;
  if (project === undefined || preset !== undefined || config !== undefined) return { preset, configFile: config, set };
  const remembered = project.settings;
  return {
    preset: remembered.preset,
    configFile: remembered.config === undefined ? undefined : path.resolve(project.root, remembered.config),
    set: [...(remembered.set ?? []), ...set],
  };
};

/**
 * The remote cache of --remote (else env PIPELINE_REMOTE, else the project's `remote`) and --remote-upload;
 * undefined when none is named.
 */
export const remoteSettings = (
  flags: Flags<typeof REMOTE_FLAGS>,
  output: Output,
  project?: Project,
): Effect.Effect<RemoteSettings | undefined, UsageError> => {
  const url = flags.remote ?? (process.env.PIPELINE_REMOTE || undefined) ?? project?.settings.remote;
  const upload = flags["remote-upload"];
  if (upload !== undefined && upload !== "true" && upload !== "false") {
    return Effect.fail(new UsageError({ message: `--remote-upload expects true or false, got "${upload}"` }));
  }
  if (url === undefined || url === "") return Effect.succeed(undefined);
  return Effect.succeed({ url, upload: upload !== "false", warn: (line) => output.err.write(`${line}\n`) });
};

/** The TARGET and the remote cache that push and pull need, or the one-line usage error for what is missing. */
export const transferTarget = (command: string, positionals: ReadonlyArray<string>, store: StoreService) => {
  const target = positionals[0];
  if (target === undefined)
    return Effect.fail(new UsageError({ message: `${command} needs a TARGET (a stage name or all)` }));
  if (store.remote === undefined) {
    const message = `${command} needs a remote cache: --remote URL, env PIPELINE_REMOTE or "remote" in pipeline.config.json`;
    return Effect.fail(new UsageError({ message }));
  }
  return Effect.succeed({ target, remote: store.remote });
};

/**
 * The store at `cacheDir`, created if needed for "write" and never for "read" (with the remote cache, when one is
 * named); a folder that cannot be written is reported in one line with what to do. A migration from the layout
 * before the CAS split is reported on stderr.
 */
export const openCache = (
  cacheDir: string,
  access: "read" | "write",
  { remote, output }: { readonly remote?: RemoteSettings | undefined; readonly output?: Output } = {},
): Effect.Effect<StoreService, UserError> =>
  (access === "write" ? openStore(cacheDir, {}, remote) : openStoreReadOnly(cacheDir, {}, remote)).pipe(
    Effect.tap((store) =>
      Effect.sync(() => {
        const m = store.migration;
        if (m === undefined || output === undefined) return;
        const quarantined = m.quarantined.map((q) => `; quarantined ${q.entry}: ${q.reason}`).join("");
        output.err.write(
          `migrated the cache at ${cacheDir} to the content-addressed layout: ${m.migrated} entries${quarantined}\n`,
        );
      }),
    ),
    Effect.catchTag("StoreError", (e) =>
      Effect.fail(
        fileSystemError(e.cause, {
          what: "the cache",
          dir: cacheDir,
          flag: "--cache-dir",
          recovery: "nothing half-written was cached",
        }) ?? e,
      ),
    ),
  );

/** The version in package.json (recorded in manifests and lock files). */
export const toolVersion = (): string => {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    return pkg.version;
  } catch {
    return "unknown";
  }
};

/** The command's configuration: defaults <- preset <- config file <- definition flags <- --set assignments. */
export const configFromFlags = <C, R, S extends FlagSpecs>(ctx: CommandContext<C, R, S>): Effect.Effect<C, UserError> =>
  attempt(
    () =>
      loadConfig(ctx.definition, {
        preset: ctx.configuration.preset,
        configFile: ctx.configuration.configFile,
        assignments: ctx.configuration.set,
        options: ctx.options,
      }).config,
  );

/** The DAG of `target` under the command line's configuration. */
export const dagFromFlags = <C, R, S extends FlagSpecs>(
  ctx: CommandContext<C, R, S>,
  target: string,
): Effect.Effect<Dag<C, R>, UserError> =>
  Effect.flatMap(configFromFlags(ctx), (config) => attempt(() => buildDag(ctx.definition.stages, config, target)));
