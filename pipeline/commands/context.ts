/**
 * What every command shares: the pipeline definition, its parsed arguments, the output streams and the tool's
 * identity; the store comes from the Effect context (Store), and interruption from the runtime (pipeline/cli.ts).
 */
import { readFileSync } from "node:fs";
import { Effect } from "effect";
import { openStore, Store, type StoreService } from "../../cache/service.ts";
import { loadConfig } from "../config.ts";
import type { PipelineDefinition } from "../definition.ts";
import { buildDag, type Dag } from "../graph.ts";
import { parseCommandArgs, type FlagSpecs, type ParsedArgs } from "./args.ts";
import { attempt, fileSystemError, type UserError } from "./errors.ts";
import { commandHelpText, helpText } from "./help.ts";

export interface Output {
  readonly out: NodeJS.WriteStream;
  readonly err: NodeJS.WriteStream;
}

export interface CommandContext<C, R, S extends FlagSpecs> extends ParsedArgs<S>, Output {
  readonly definition: PipelineDefinition<C, R>;
  /** Recorded in every manifest and lock file this run writes. */
  readonly tool: { readonly name: string; readonly version: string };
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
 * A command from its flags and its body. The body gets the parsed arguments typed by `flags`, and the store at
 * --cache-dir; its result is the exit code (0 ok, 1 a node failed or differed).
 */
export const defineCommand = <S extends FlagSpecs>(command: {
  readonly name: string;
  readonly flags: S;
  readonly run: <C, R>(ctx: CommandContext<C, R, S>) => Effect.Effect<number, UserError, Store>;
}): Command => ({
  name: command.name,
  flags: command.flags,
  run: (definition, argv, output) =>
    Effect.gen(function* () {
      const args = yield* parseCommandArgs(command.name, command.flags, definition, argv);
      if (args.common.help) {
        output.out.write(commandHelpText(definition, command.name) ?? helpText(definition));
        return 0;
      }
      const cacheDir = args.common["cache-dir"] ?? process.env.PIPELINE_CACHE_DIR ?? "./cache";
      const ctx = { ...args, ...output, definition, tool: { name: definition.name, version: toolVersion() } };
      return yield* command.run(ctx).pipe(Effect.provideServiceEffect(Store, openCache(cacheDir)));
    }),
});

/** The store at --cache-dir; a folder that cannot be written is reported in one line with what to do. */
const openCache = (cacheDir: string): Effect.Effect<StoreService, UserError> =>
  Effect.catchTag(openStore(cacheDir), "StoreError", (e) =>
    Effect.fail(
      fileSystemError(e.cause, {
        what: "the cache",
        dir: cacheDir,
        flag: "--cache-dir",
        recovery: "nothing half-written was cached",
      }) ?? e,
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

/**
 * The configuration the command line gives (defaults <- preset <- --config <- definition flags <- --set), with the
 * Slurm executor's settings (its `slurm` section).
 */
export const loadedConfigFromFlags = <C, R, S extends FlagSpecs>(ctx: CommandContext<C, R, S>) =>
  attempt(() =>
    loadConfig(ctx.definition, {
      preset: ctx.common.preset,
      configFile: ctx.common.config,
      assignments: ctx.common.set,
      options: ctx.options,
    }),
  );

/** The configuration the command line gives: defaults <- preset <- --config <- definition flags <- --set. */
export const configFromFlags = <C, R, S extends FlagSpecs>(ctx: CommandContext<C, R, S>): Effect.Effect<C, UserError> =>
  Effect.map(loadedConfigFromFlags(ctx), (loaded) => loaded.config);

/** The DAG of `target` under the command line's configuration. */
export const dagFromFlags = <C, R, S extends FlagSpecs>(
  ctx: CommandContext<C, R, S>,
  target: string,
): Effect.Effect<Dag<C, R>, UserError> =>
  Effect.flatMap(configFromFlags(ctx), (config) => attempt(() => buildDag(ctx.definition.stages, config, target)));
