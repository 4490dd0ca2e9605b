/**
 * The `pipeline` command line: run, status, dag, inspect, gc, lock, replay, params, init, push and pull
 * (pipeline/commands/, one per file),
 * plus the commands a pipeline definition adds. Exit codes are assigned here, in {@link exitCode}: 0 ok, 1 a node
 * failed (or replay found a difference), 2 a user mistake (one line on stderr, no stack trace), 130 interrupted.
 * Ctrl-C is handled in one place, {@link runMain}: it interrupts the program's fiber, whose finalizers stop running
 * nodes, discard their staging directories and release their locks.
 */
import { Cause, Effect, Exit } from "effect";
import type { PipelineDefinition } from "./definition.ts";
import { toolVersion, type Command, type Output } from "./commands/context.ts";
import { dag } from "./commands/dag.ts";
import { execNode } from "./commands/exec-node.ts";
import { isUserError, UsageError, type UserError } from "./commands/errors.ts";
import { gc } from "./commands/gc.ts";
import { commandHelpText, helpText } from "./commands/help.ts";
import { init } from "./commands/init.ts";
import { inspect } from "./commands/inspect.ts";
import { lock } from "./commands/lock.ts";
import { params } from "./commands/params.ts";
import { pull } from "./commands/pull.ts";
import { push } from "./commands/push.ts";
import { replay } from "./commands/replay.ts";
import { run } from "./commands/run.ts";
import { status } from "./commands/status.ts";
import { didYouMean } from "./suggest.ts";

const COMMANDS: ReadonlyArray<Command> = [run, status, dag, inspect, gc, lock, replay, params, init, push, pull];

/**
 * The whole command line as one Effect: its success is the exit code of a command that ran to its end. Besides the
 * commands: `--version` (`-V`), `help` (`--help`, `-h`) and `help COMMAND` (as `COMMAND --help`).
 */
export const cli = <C, R>(
  definition: PipelineDefinition<C, R>,
  argv: ReadonlyArray<string>,
  output: Output,
): Effect.Effect<number, UserError> =>
  Effect.suspend(() => {
    const [name, ...rest] = argv;
    if (name === "--version" || name === "-V") {
      output.out.write(`pipeline ${toolVersion()}\n`);
      return Effect.succeed(0);
    }
    // `help COMMAND`: what follows it (options given out of habit) changes nothing, as with git help.
    const topic = name === "help" && rest[0] !== undefined && !rest[0].startsWith("-") ? rest[0] : undefined;
    if (topic !== undefined) {
      const text = commandHelpText(definition, topic);
      if (text === undefined) return Effect.fail(unknownCommand(definition, topic));
      output.out.write(text);
      return Effect.succeed(0);
    }
    if (name === undefined || name === "help" || name === "--help" || name === "-h") {
      output.out.write(helpText(definition));
      return Effect.succeed(name === undefined ? 2 : 0);
    }
    const own = definition.commands?.[name];
    if (own !== undefined) return Effect.promise(() => own.run(rest));
    // The batch worker: run by jobs, not people, so neither listed nor suggested.
    if (name === execNode.name) return execNode.run(definition, rest, output);
    const command = COMMANDS.find((c) => c.name === name);
    if (command === undefined) return Effect.fail(unknownCommand(definition, name));
    return command.run(definition, rest, output);
  });

/** `name` is no command: the nearest one when it looks like a typo of it, else the list of them. */
const unknownCommand = <C, R>(definition: PipelineDefinition<C, R>, name: string): UsageError => {
  const names = [...COMMANDS.map((c) => c.name), ...Object.keys(definition.commands ?? {}), "help"];
  const hint = didYouMean(name, names) || ` (${names.join(", ")})`;
  return new UsageError({ message: `unknown command "${name}"${hint}` });
};

/** The exit code of a finished program; a user mistake is written as one line, a defect as its full trace. */
export const exitCode = (exit: Exit.Exit<number, UserError>, err: NodeJS.WriteStream): number => {
  if (Exit.isSuccess(exit)) return exit.value;
  if (Cause.isInterruptedOnly(exit.cause)) return 130;
  const failure = Cause.failureOption(exit.cause);
  if (failure._tag === "Some" && isUserError(failure.value)) {
    err.write(`pipeline: ${failure.value.message}\n`);
    return 2;
  }
  err.write(`pipeline: unexpected failure\n${Cause.pretty(exit.cause)}\n`);
  return 1;
};

/** Runs the CLI with `argv` (without node and script) in-process, without signal handling; returns the exit code. */
export const main = async <C, R>(
  definition: PipelineDefinition<C, R>,
  argv: ReadonlyArray<string>,
  output: Output = { out: process.stdout, err: process.stderr },
): Promise<number> => exitCode(await Effect.runPromiseExit(cli(definition, argv, output)), output.err);

/**
 * The process entry point: runs the CLI on process.argv and sets the exit code. The first Ctrl-C (or SIGTERM)
 * interrupts the program, which stops running nodes and exits with 130; a second one exits at once.
 */
export const runMain = <C, R>(definition: PipelineDefinition<C, R>): void => {
  const output: Output = { out: process.stdout, err: process.stderr };
  const fiber = Effect.runFork(cli(definition, process.argv.slice(2), output));
  // A fiber suspended on something outside Node's event loop must not let the process end early.
  const keepAlive = setInterval(() => {}, 2 ** 31 - 1);
  let signalled = false;
  const onSignal = () => {
    if (signalled) process.exit(130);
    signalled = true;
    output.err.write("\ninterrupting: stopping running nodes (press Ctrl-C again to exit at once)\n");
    fiber.unsafeInterruptAsFork(fiber.id());
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  fiber.addObserver((exit) => {
    clearInterval(keepAlive);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    const code = exitCode(exit, output.err);
    // After a signal, leftover handles (a native library's threads) must not keep the process alive.
    if (signalled) process.exit(code);
    process.exitCode = code;
  });
};
