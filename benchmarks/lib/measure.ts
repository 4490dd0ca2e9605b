/**
 * Measuring helpers shared by the benchmarks: medians of repeated samples, commands timed as whole processes, results
 * written as JSON under benchmarks/results/, command-line options, and a peak-memory sampler. The machine is shared,
 * so every headline is a median of several samples and every comparison is a ratio of runs interleaved in one process.
 */
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

export const benchmarksDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const repoRoot = path.resolve(benchmarksDir, "..");

export const median = (xs: ReadonlyArray<number>): number => {
  if (xs.length === 0) throw new Error("median of no values");
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Median, extremes and count of repeated samples (any unit). */
export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export const summarize = (samples: ReadonlyArray<number>): Summary => ({
  median: median(samples),
  min: Math.min(...samples),
  max: Math.max(...samples),
  n: samples.length,
});

/** Repeated timings in milliseconds (the planning benchmark's unit). */
export interface Timing {
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly runs: number;
}

export const timingOf = (samplesMs: ReadonlyArray<number>): Timing => {
  const { median, min, max, n } = summarize(samplesMs);
  return { medianMs: median, minMs: min, maxMs: max, runs: n };
};

/** `1234.5 ms` -> "1235 ms", small values with one decimal. */
export const formatMs = (ms: number): string => (ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`);

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
    maxBuffer: 64 * 1024 * 1024,
    ...options,
    encoding: "utf8",
  });
  const output = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  if (r.error !== undefined) throw new CommandFailed(`${command.file}: ${r.error.message}`);
  if (r.status !== 0) {
    const args = [command.file, ...command.args].join(" ");
    throw new CommandFailed(`${args} exited ${r.status ?? r.signal}:\n${output.slice(-2000)}`);
  }
  return output;
};

/** Rounds for printing and JSON (ratios and times do not need 17 digits). */
export const round = (x: number, digits = 3): number => Number(x.toPrecision(digits + 1));

/** Writes benchmarks/results/<name>.json (or into `dir`) and returns its path. */
export function writeResults(
  name: string,
  results: unknown,
  dir: string = path.join(benchmarksDir, "results"),
): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

/** `--name value` / `--flag` command-line options; unknown names are an error so typos do not go unnoticed. */
export function parseOptions(argv: ReadonlyArray<string>, known: ReadonlyArray<string>): Map<string, string> {
  const options = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) throw new Error(`unexpected argument '${arg}'`);
    const [name, inline] = arg.slice(2).split("=", 2) as [string, string | undefined];
    if (!known.includes(name))
      throw new Error(`unknown option --${name} (known: ${known.map((k) => `--${k}`).join(" ")})`);
    const next = argv[i + 1];
    if (inline !== undefined) options.set(name, inline);
    else if (next !== undefined && !next.startsWith("--")) options.set(name, argv[++i]!);
    else options.set(name, "true");
  }
  return options;
}

/** The integer (at least `min`) given as `--name`, or undefined when the option is absent. */
export function countOption(options: ReadonlyMap<string, string>, name: string, min = 1): number | undefined {
  const raw = options.get(name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} expects an integer >= ${min}, got '${raw}'`);
  return n;
}

/** A comma-separated list of positive integers, e.g. "1,4,16". */
export const parseIntList = (text: string): number[] =>
  text.split(",").map((part) => {
    const n = Number(part.trim());
    if (!Number.isInteger(n) || n < 1) throw new Error(`expected positive integers, got '${text}'`);
    return n;
  });

/**
 * Tracks the peak of process RSS, and of any extra gauge (e.g. tf.memory().numBytes), by sampling on a timer and
 * whenever `sample()` is called (call it at points of interest: the timer only fires when the event loop is free).
 */
export class PeakMemory {
  private peakRss = 0;
  private peakGauge = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly gauge: () => number = () => 0,
    intervalMs = 20,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): void {
    this.peakRss = Math.max(this.peakRss, process.memoryUsage.rss());
    this.sampleGauge();
  }

  /** Samples only the gauge (cheap enough to call after every tensor op). */
  sampleGauge(): void {
    this.peakGauge = Math.max(this.peakGauge, this.gauge());
  }

  /** Stops sampling; returns the peaks in MiB. */
  stop(): { readonly rssMiB: number; readonly gaugeMiB: number } {
    clearInterval(this.timer);
    this.sample();
    return { rssMiB: this.peakRss / 2 ** 20, gaugeMiB: this.peakGauge / 2 ** 20 };
  }
}

/** Deterministic pseudo-random bytes (a xorshift stream), for synthetic images that cost nothing to make. */
export function syntheticBytes(count: number, seed: number, modulo = 256): Uint8Array {
  const out = new Uint8Array(count);
  let s = (seed * 2654435761 + 1) >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s % modulo;
  }
  return out;
}
