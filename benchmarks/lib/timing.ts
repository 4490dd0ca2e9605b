/** Timing helpers for the benchmarks: medians of repeated measurements, and commands run to completion. */
import { spawnSync, type SpawnSyncOptions } from "node:child_process";

/** Summary of repeated timings in milliseconds. The median is the headline: the machine is shared and noisy. */
export interface Timing {
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly runs: number;
}

export const median = (xs: ReadonlyArray<number>): number => {
  if (xs.length === 0) throw new Error("median of no values");
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

export const summarize = (samplesMs: ReadonlyArray<number>): Timing => ({
  medianMs: median(samplesMs),
  minMs: Math.min(...samplesMs),
  maxMs: Math.max(...samplesMs),
  runs: samplesMs.length,
});

/** A command line to time as a whole process. */
export interface Command {
  readonly file: string;
  readonly args: ReadonlyArray<string>;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export class CommandFailed extends Error {
  override readonly name = "CommandFailed";
}

/** Runs a command to completion; throws with its output when it exits non-zero. Returns stdout + stderr. */
export const runCommand = (command: Command, options: SpawnSyncOptions = {}): string => {
  const r = spawnSync(command.file, [...command.args], {
    cwd: command.cwd,
    env: command.env ?? process.env,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    ...options,
  });
  const output = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  if (r.error !== undefined) throw new CommandFailed(`${command.file}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new CommandFailed(`${[command.file, ...command.args].join(" ")} exited ${r.status ?? r.signal}:\n${output.slice(-2000)}`);
  }
  return output;
};

/** `1234.5 ms` -> "1235 ms", small values with one decimal. */
export const formatMs = (ms: number): string => (ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`);
