/**
 * Run records: every `pipeline run` in a project leaves `.pipeline/runs/<timestamp>-<id>.json` with its target, its
 * configuration, the cache it ran on, its node keys, start, end and outcome. Written atomically when the run starts
 * (the keys its plan knows) and again when it ends (every key it made or used), they let gc keep what the last runs
 * reached (pipeline/gc-roots.ts) and `params diff --last-run` compare with the last run's configuration.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { Either, Schema } from "effect";
import { ifExists, makeDirs, writeFileAtomic } from "../cache/fsutil.ts";
import type { NodeResult } from "./executor/dag.ts";
import type { Plan } from "./plan.ts";
import { ConfigSourcesSchema, stableJson } from "./replay/lockfile.ts";
import { runsDir } from "./workspace.ts";

export const RunRecordSchema = Schema.Struct({
  formatVersion: Schema.Literal(1),
  id: Schema.String,
  target: Schema.String,
  /** The absolute root of the cache the run used: gc only counts the runs on its own cache. */
  cache: Schema.String,
  configSources: ConfigSourcesSchema,
  pid: Schema.Number,
  host: Schema.String,
  startedAt: Schema.String,
  finishedAt: Schema.NullOr(Schema.String),
  outcome: Schema.Literal("running", "succeeded", "failed", "interrupted"),
  /** Node id -> its key (null while unknown: below a node that had still to run). */
  nodes: Schema.Record({ key: Schema.String, value: Schema.NullOr(Schema.String) }),
});
export type RunRecord = typeof RunRecordSchema.Type;

/** A record and the file it is written to. */
export interface RecordedRun {
  readonly file: string;
  readonly record: RunRecord;
}

/** Node id -> key for the nodes whose key the plan knows (cached or to run). */
export const plannedKeys = (plan: Plan): Record<string, string | null> =>
  Object.fromEntries([...plan.entries].map(([id, e]) => [id, e.status === "pending" ? null : e.key]));

/** Records a run starting in the project at `root`: its file sorts by start time, then by a random id. */
export const startRunRecord = async (
  root: string,
  fields: Pick<RunRecord, "target" | "cache" | "configSources" | "nodes">,
): Promise<RecordedRun> => {
  const started = new Date();
  const id = randomBytes(4).toString("hex");
  const record: RunRecord = {
    formatVersion: 1,
    id,
    ...fields,
    pid: process.pid,
    host: hostname(),
    startedAt: started.toISOString(),
    finishedAt: null,
    outcome: "running",
  };
  const dir = runsDir(root);
  await makeDirs(dir);
  const file = path.join(dir, `${started.toISOString().replace(/[-:.]/g, "")}-${id}.json`);
  await writeFileAtomic(file, stableJson(record));
  return { file, record };
};

/** Rewrites a run's record with how it ended: every node's key as the results know it, the planned ones otherwise. */
export const finishRunRecord = async (
  run: RecordedRun,
  outcome: Exclude<RunRecord["outcome"], "running">,
  results: ReadonlyArray<NodeResult>,
): Promise<void> => {
  const nodes = { ...run.record.nodes };
  for (const r of results) nodes[r.id] = r.key ?? nodes[r.id] ?? null;
  const record: RunRecord = { ...run.record, nodes, outcome, finishedAt: new Date().toISOString() };
  await writeFileAtomic(run.file, stableJson(record));
};

/** The project's run records, newest first (unreadable ones are skipped); only those on `cache` when given. */
export const runRecords = async (root: string, cache?: string): Promise<RecordedRun[]> => {
  const dir = runsDir(root);
  const names = ((await ifExists(() => fs.readdir(dir))) ?? []).filter((n) => n.endsWith(".json")).sort();
  const runs: RecordedRun[] = [];
  for (const name of names.reverse()) {
    const file = path.join(dir, name);
    const text = await ifExists(() => fs.readFile(file, "utf8"));
    if (text === undefined) continue;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      continue;
    }
    const decoded = Schema.decodeUnknownEither(RunRecordSchema)(json);
    if (Either.isRight(decoded) && (cache === undefined || decoded.right.cache === cache))
      runs.push({ file, record: decoded.right });
  }
  return runs;
};
