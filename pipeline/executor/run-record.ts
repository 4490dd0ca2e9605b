/**
 * A batch run's folder in the cache, `<cache>/logs/<runId>/`: what its workers need (run.json: the configuration's
 * sources and the definition's flags; config.json: the --config contents) and what the run leaves behind (each job's
 * stdout and stderr, each worker's outcome, and the jobs submitted, which `pipeline status` lists).
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { ifExists, makeDirs, writeFileAtomic } from "../../cache/fsutil.ts";
import type { OptionValues } from "../definition.ts";

/** One submitted job of a run. */
export interface RunJob {
  readonly id: string;
  readonly nodeId: string;
  readonly key: string;
  readonly log: string;
  readonly submittedAt: string;
  readonly attempt: number;
}

export interface RunRecord {
  readonly formatVersion: 1;
  /** Also every job's name, so that one scheduler query finds all of them. */
  readonly runId: string;
  /** The executor, e.g. "slurm". */
  readonly executor: string;
  readonly createdAt: string;
  /** The coordinator's working directory: the workers run there, so relative paths mean the same. */
  readonly cwd: string;
  /** The configuration's sources, as `pipeline run` was given them. */
  readonly preset: string | null;
  readonly config: Readonly<Record<string, unknown>> | null;
  readonly set: ReadonlyArray<string>;
  /** The definition's flags (or their environment variables), e.g. data directory and backend. */
  readonly options: OptionValues;
  readonly jobs: ReadonlyArray<RunJob>;
}

/** How a worker ended, as it writes it for the coordinator (a hint: the committed manifest decides success). */
export interface WorkerOutcome {
  readonly status: "ran" | "cached" | "failed";
  readonly error?: string;
  readonly host: string;
  /** When the worker process started and finished (ms since the epoch). */
  readonly startedAtMs: number;
  readonly finishedAtMs: number;
}

const RUN_JSON = "run.json";
const CONFIG_JSON = "config.json";
const RUN_PREFIX = "run-";

/** A new run id, sortable by time: `run-20240131T120000-1a2b3c`. */
export const newRunId = (): string =>
  `${RUN_PREFIX}${new Date().toISOString().replace(/[-:]/g, "").slice(0, 15)}-${randomBytes(3).toString("hex")}`;

export const runDir = (cacheRoot: string, runId: string): string => path.join(cacheRoot, "logs", runId);

/** The file name stem of a node's files in a run folder (node ids hold brackets, commas and '='). */
export const nodeFileStem = (nodeId: string): string => nodeId.replace(/[^\w.=,-]+/g, "_");

export const outcomePath = (dir: string, key: string): string => path.join(dir, `${key}.outcome.json`);

/** The file a worker reads the --config contents from, or undefined when the run had none. */
export const runConfigFile = (dir: string, record: RunRecord): string | undefined =>
  record.config === null ? undefined : path.join(dir, CONFIG_JSON);

/** Creates the run's folder with its record and the --config contents. */
export async function createRun(dir: string, record: RunRecord): Promise<void> {
  await makeDirs(dir);
  if (record.config !== null) await writeFileAtomic(path.join(dir, CONFIG_JSON), JSON.stringify(record.config));
  await writeRunRecord(dir, record);
}

export const writeRunRecord = (dir: string, record: RunRecord): Promise<void> =>
  writeFileAtomic(path.join(dir, RUN_JSON), `${JSON.stringify(record, null, 2)}\n`);

export async function readRunRecord(dir: string): Promise<RunRecord> {
  return JSON.parse(await fs.readFile(path.join(dir, RUN_JSON), "utf8")) as RunRecord;
}

/** The folder of the latest batch run in the cache, or undefined when there was none. */
export async function latestRunDir(cacheRoot: string): Promise<string | undefined> {
  const logs = path.join(cacheRoot, "logs");
  const entries = (await ifExists(() => fs.readdir(logs))) ?? [];
  const runs = entries.filter((e) => e.startsWith(RUN_PREFIX)).sort();
  return runs.length === 0 ? undefined : path.join(logs, runs.at(-1)!);
}

/** Writes a worker's outcome; failing to is harmless (the coordinator then goes by the manifest alone). */
export async function writeOutcome(file: string, outcome: Omit<WorkerOutcome, "host">): Promise<void> {
  await writeFileAtomic(file, JSON.stringify({ ...outcome, host: hostname() })).catch(() => {});
}

export async function readOutcome(file: string): Promise<WorkerOutcome | undefined> {
  const text = await ifExists(() => fs.readFile(file, "utf8")).catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as WorkerOutcome;
  } catch {
    return undefined;
  }
}
