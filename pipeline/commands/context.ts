/**
 * What every command shares: the pipeline definition, its parsed arguments, the output streams and the tool's
 * identity; the store comes from the Effect context (Store), and interruption from the runtime (pipeline/cli.ts).
 */
import { readFileSync } from "node:fs";
import { Effect } from "effect";
import { openStore, Store, type RemoteSettings, type StoreService } from "../../cache/service.ts";
import { loadConfig } from "../config.ts";
import type { PipelineDefinition } from "../definition.ts";
import { buildDag, type Dag } from "../graph.ts";
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
  /** The command uses a remote cache: its flags include REMOTE_FLAGS, and the store comes with the remote. */
  readonly remote?: true;
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
      const remote =
        command.remote === true
          ? yield* remoteSettings(args.flags as unknown as Flags<typeof REMOTE_FLAGS>, output)
          : undefined;
      const ctx = { ...args, ...output, definition, tool: { name: definition.name, version: toolVersion() } };
      return yield* command.run(ctx).pipe(Effect.provideServiceEffect(Store, openCache(cacheDir, remote, output)));
    }),
});

/** The remote cache of --remote (else env PIPELINE_REMOTE) and --remote-upload; undefined when none is named. */
export const remoteSettings = (
  flags: Flags<typeof REMOTE_FLAGS>,
  output: Output,
): Effect.Effect<RemoteSettings | undefined, UsageError> => {
  const url = flags.remote ?? process.env.PIPELINE_REMOTE;
  const upload = flags["remote-upload"];
  if (upload !== undefined && upload !== "true" && upload !== "false") {
    return Effect.fail(new UsageError({ message: `--remote-upload expects true or false, got "${upload}"` }));
  }
  if (url === undefined || url === "") return Effect.succeed(undefined);
  return Effect.succeed({ url, upload: upload !== "false", warn: (line) => output.err.write(`${line}\n`) });
};

/**
 * The store at --cache-dir (with the remote cache, when one is named); a folder that cannot be written is reported in
 * one line with what to do. A migration from the layout before the CAS split is reported on stderr.
 */
const openCache = (
  cacheDir: string,
  remote: RemoteSettings | undefined,
  output: Output,
): Effect.Effect<StoreService, UserError> =>
  openStore(cacheDir, {}, remote).pipe(
    Effect.tap((store) =>
      Effect.sync(() => {
        const m = store.migration;
        if (m === undefined) return;
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

/** The configuration the command line gives: defaults <- preset <- --config <- definition flags <- --set. */
export const configFromFlags = <C, R, S extends FlagSpecs>(ctx: CommandContext<C, R, S>): Effect.Effect<C, UserError> =>
  attempt(
    () =>
      loadConfig(ctx.definition, {
        preset: ctx.common.preset,
        configFile: ctx.common.config,
        assignments: ctx.common.set,
        options: ctx.options,
      }).config,
  );

/** The DAG of `target` under the command line's configuration. */
export const dagFromFlags = <C, R, S extends FlagSpecs>(
  ctx: CommandContext<C, R, S>,
  target: string,
): Effect.Effect<Dag<C, R>, UserError> =>
  Effect.flatMap(configFromFlags(ctx), (config) => attempt(() => buildDag(ctx.definition.stages, config, target)));
