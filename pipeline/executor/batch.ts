/**
 * Nodes as batch jobs of a cluster scheduler, behind a small interface ({@link BatchScheduler}: submit, poll, cancel,
 * log) that slurm.ts implements; a Kubernetes-Job scheduler would be one more file of the same shape.
 *
 * Each node that must be computed becomes one job as soon as its inputs are committed: the hidden worker command
 * (`pipeline exec-node KEY`) on the same cache and configuration, at most `jobs` in flight. One poller asks the
 * scheduler about all of the run's jobs at once (they share one name, the run id), backing off while nothing changes;
 * a failed query is tolerated, and a job the scheduler does not know is "unknown", not failed, for a while. A job's
 * end is only a hint: whether its node succeeded is decided by the committed manifest in the cache, never by an exit
 * code. A job that ends without one fails its node with the scheduler's state and the job's log path in one line;
 * `retries` resubmits it (training then resumes from the checkpoint in the node's scratch directory, in the cache).
 * A job that waits for something the cluster cannot give is cancelled and fails its node with the reason.
 * Interruption (Ctrl-C) cancels every job of the run still in flight.
 */
import * as fs from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { Data, Deferred, Effect, Either } from "effect";
import { Store } from "../../cache/service.ts";
import { explainMiss } from "../plan.ts";
import { StageError, type JobResources, type Resource } from "../stage.ts";
import type { ExecEvent, ExecutorSetup, JobInfo, MakeExecutor, NodeResult, ReadyNode } from "./executor.ts";
import { JobFailed } from "./executor.ts";
import { asStageError } from "./local.ts";
import { outcomePath, readOutcome, writeRunRecord, type RunJob, type RunRecord } from "./run-record.ts";

/** One job to submit: a node's worker command and what its stage asks for. */
export interface JobRequest {
  /** The run id: every job of a run carries it as its name. */
  readonly name: string;
  readonly nodeId: string;
  readonly stage: string;
  readonly resource: Resource;
  readonly jobResources: JobResources | undefined;
  /** The worker's command line. */
  readonly argv: ReadonlyArray<string>;
  /** The run's folder in the cache, where the job's log goes. */
  readonly runDir: string;
  /** Where the worker runs: the coordinator's working directory. */
  readonly cwd: string;
}

/** What the scheduler says about a job; a job it does not list is unknown. */
export type JobState =
  | { readonly phase: "queued"; readonly reason?: string; readonly unsatisfiable?: boolean; readonly elapsed?: string }
  | { readonly phase: "running"; readonly elapsed?: string }
  | { readonly phase: "ended"; readonly state: string; readonly exitCode?: string; readonly elapsed?: string };

/** A scheduler command failed (one line: the command and what it said). */
export class SchedulerError extends Data.TaggedError("SchedulerError")<{ readonly message: string }> {}

export interface BatchScheduler {
  /** Its name in messages, e.g. "Slurm". */
  readonly name: string;
  /** Submits one job; its id. */
  readonly submit: (request: JobRequest) => Effect.Effect<string, SchedulerError>;
  /** The states of the run's jobs among `ids`, in one query. */
  readonly poll: (
    runId: string,
    ids: ReadonlyArray<string>,
  ) => Effect.Effect<ReadonlyMap<string, JobState>, SchedulerError>;
  /** Cancels jobs; best effort (a job that already ended is no error). */
  readonly cancel: (ids: ReadonlyArray<string>) => Effect.Effect<void>;
  /** Where a job's stdout and stderr are. */
  readonly log: (request: JobRequest, id: string) => string;
}

export interface BatchOptions {
  readonly scheduler: BatchScheduler;
  /** The run's record (its jobs are appended as they are submitted) and folder. */
  readonly run: RunRecord;
  readonly runDir: string;
  /** Resubmissions of a job that ended without committing its node. */
  readonly retries: number;
  /** The first and the longest wait between two polls. */
  readonly pollMinMs: number;
  readonly pollMaxMs: number;
  /** How long a job may stay unknown to the scheduler (or its queries fail) before its node fails. */
  readonly unknownLimitMs: number;
  /** How long a manifest may take to appear after its job ended well (a shared filesystem's caches). */
  readonly manifestGraceMs: number;
}

/** How a job's wait ended. */
type JobEnd =
  | { readonly kind: "ended"; readonly state: string; readonly exitCode?: string }
  | { readonly kind: "unsatisfiable"; readonly reason: string }
  | { readonly kind: "vanished"; readonly lastError?: string };

/** A job in flight, as the poller tracks it. */
interface ActiveJob {
  readonly nodeId: string;
  readonly log: string;
  readonly ended: Deferred.Deferred<JobEnd>;
  phase: JobState["phase"] | "submitted";
  lastKnownAt: number;
  /** How much of the log has been read for note lines. */
  logOffset: number;
}

/** This checkout's CLI, as `node <bin/pipeline.mjs>`: what a worker runs (the checkout must be on a shared path). */
export const workerCommand = (): ReadonlyArray<string> => [
  process.execPath,
  fileURLToPath(new URL("../../bin/pipeline.mjs", import.meta.url)),
];

/** The worker's "note" lines (`note     <node>: message`) added to a job's log since the last read. */
const newNotes = async (job: ActiveJob): Promise<string[]> => {
  const handle = await fs.open(job.log, "r").catch(() => undefined);
  if (handle === undefined) return [];
  try {
    const { size } = await handle.stat();
    if (size <= job.logOffset) return [];
    const buffer = Buffer.alloc(size - job.logOffset);
    await handle.read(buffer, 0, buffer.length, job.logOffset);
    const text = buffer.toString("utf8");
    const complete = text.lastIndexOf("\n") + 1; // a partial last line waits for the next read
    job.logOffset += Buffer.byteLength(text.slice(0, complete));
    const prefix = `note     ${job.nodeId}: `;
    return text
      .slice(0, complete)
      .split("\n")
      .filter((line) => line.startsWith(prefix))
      .map((line) => line.slice(prefix.length));
  } finally {
    await handle.close();
  }
};

/** The executor that computes every node as a batch job of `options.scheduler`. */
export const batchExecutor =
  (options: BatchOptions): MakeExecutor =>
  <C, R>(setup: ExecutorSetup<R>) =>
    Effect.gen(function* () {
      const { scheduler, runDir, retries } = options;
      const store = yield* Store;
      const emit = (event: ExecEvent) => setup.emit(event);
      const slots = yield* Effect.makeSemaphore(Math.max(1, setup.jobs));
      const active = new Map<string, ActiveJob>();
      const jobs: RunJob[] = [...options.run.jobs];
      let nextPollAt = Date.now() + options.pollMinMs;
      let lastPollError: string | undefined;

      const forwardNotes = (job: ActiveJob) =>
        Effect.promise(() => newNotes(job).catch(() => [])).pipe(
          Effect.map((notes) => notes.forEach((message) => emit({ type: "log", id: job.nodeId, message }))),
        );
      const finish = (id: string, job: ActiveJob, end: JobEnd) =>
        Effect.gen(function* () {
          active.delete(id);
          yield* forwardNotes(job);
          yield* Deferred.succeed(job.ended, end);
        });

      /** One query about every job in flight; whether anything changed. */
      const pollOnce = Effect.gen(function* () {
        const ids = [...active.keys()];
        if (ids.length === 0) return false;
        const answer = yield* Effect.either(scheduler.poll(options.run.runId, ids));
        if (Either.isLeft(answer)) lastPollError = answer.left.message;
        const now = Date.now();
        let changed = false;
        for (const id of ids) {
          const job = active.get(id)!;
          const state = Either.isRight(answer) ? answer.right.get(id) : undefined;
          if (state === undefined) {
            if (now - job.lastKnownAt > options.unknownLimitMs) {
              yield* finish(id, job, {
                kind: "vanished",
                ...(lastPollError === undefined ? {} : { lastError: lastPollError }),
              });
              changed = true;
            }
            continue;
          }
          job.lastKnownAt = now;
          if (state.phase === "ended") {
            yield* finish(id, job, {
              kind: "ended",
              state: state.state,
              ...(state.exitCode ? { exitCode: state.exitCode } : {}),
            });
            changed = true;
          } else if (state.phase === "queued" && state.unsatisfiable === true) {
            yield* scheduler.cancel([id]);
            yield* finish(id, job, { kind: "unsatisfiable", reason: state.reason ?? "unsatisfiable" });
            changed = true;
          } else {
            if (state.phase !== job.phase) changed = true;
            job.phase = state.phase;
            if (state.phase === "running") yield* forwardNotes(job);
          }
        }
        return changed;
      });

      yield* Effect.forkScoped(
        Effect.gen(function* () {
          let delay = options.pollMinMs;
          for (;;) {
            while (Date.now() < nextPollAt) yield* Effect.sleep(Math.min(options.pollMinMs, nextPollAt - Date.now()));
            const changed = yield* pollOnce;
            delay = changed ? options.pollMinMs : Math.min(options.pollMaxMs, delay * 1.5);
            nextPollAt = Date.now() + delay;
          }
        }),
      );
      // Whatever ends the execution with jobs in flight (Ctrl-C above all) cancels them.
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          if (active.size === 0) return;
          yield* scheduler.cancel([...active.keys()]);
          for (const [id, job] of active) {
            emit({ type: "log", id: job.nodeId, message: `cancelled ${scheduler.name} job ${id}` });
          }
        }),
      );

      /** Submits a node's job and starts tracking it; not interruptible, so that no submitted job goes untracked. */
      const submit = (request: JobRequest, key: string, attempt: number) =>
        Effect.uninterruptible(
          Effect.gen(function* () {
            yield* Effect.promise(() => fs.rm(outcomePath(runDir, key), { force: true }));
            const id = yield* scheduler
              .submit(request)
              .pipe(
                Effect.mapError(
                  (e) => new StageError({ message: `cannot submit a ${scheduler.name} job: ${e.message}` }),
                ),
              );
            const submittedAt = Date.now();
            const job: ActiveJob = {
              nodeId: request.nodeId,
              log: scheduler.log(request, id),
              ended: yield* Deferred.make<JobEnd>(),
              phase: "submitted",
              lastKnownAt: submittedAt,
              logOffset: 0,
            };
            active.set(id, job);
            nextPollAt = Math.min(nextPollAt, submittedAt + options.pollMinMs);
            jobs.push({
              id,
              nodeId: request.nodeId,
              key,
              log: job.log,
              submittedAt: new Date(submittedAt).toISOString(),
              attempt,
            });
            // The record only serves `pipeline status`: failing to write it fails nothing.
            yield* Effect.promise(() => writeRunRecord(runDir, { ...options.run, jobs }).catch(() => {}));
            return { id, job, submittedAt };
          }),
        );

      /** The node's committed manifest, waiting up to the grace period when the worker says it committed. */
      const committed = (key: string, workerSucceeded: boolean) =>
        Effect.gen(function* () {
          const deadline = Date.now() + (workerSucceeded ? options.manifestGraceMs : 0);
          for (;;) {
            const found = yield* store.lookup(key).pipe(Effect.mapError(asStageError("cannot read the cache")));
            if (found.status === "hit") return found;
            if (Date.now() >= deadline) return undefined;
            yield* Effect.sleep(Math.min(1000, options.pollMinMs));
          }
        });

      const compute = (ready: ReadyNode<C, R>): Effect.Effect<NodeResult, StageError | JobFailed, Store> =>
        slots.withPermits(1)(
          Effect.gen(function* () {
            const { node, key, forced } = ready;
            const reason = forced
              ? "forced (--force)"
              : yield* explainMiss(node, ready.inputs).pipe(Effect.mapError(asStageError("cannot read the cache")));
            const request: JobRequest = {
              name: options.run.runId,
              nodeId: node.id,
              stage: node.stage.name,
              resource: node.stage.resources,
              jobResources: node.stage.jobResources,
              argv: [
                ...workerCommand(),
                "exec-node",
                key,
                "--node",
                node.id,
                "--run",
                runDir,
                "--cache-dir",
                store.paths.root,
                ...(forced ? ["--force"] : []),
              ],
              runDir,
              cwd: options.run.cwd,
            };
            for (let attempt = 1; ; attempt++) {
              const { id, job, submittedAt } = yield* submit(request, key, attempt);
              const jobName = `${scheduler.name} job ${id}`;
              emit(
                attempt === 1
                  ? { type: "start", id: node.id, reason: `${reason} (${jobName})` }
                  : { type: "log", id: node.id, message: `resubmitted as ${jobName} (attempt ${attempt})` },
              );
              const end = yield* Deferred.await(job.ended);
              const outcome = yield* Effect.promise(() => readOutcome(outcomePath(runDir, key)));
              const state = end.kind === "ended" ? end.state : end.kind === "unsatisfiable" ? "CANCELLED" : "UNKNOWN";
              const info: JobInfo = {
                scheduler: scheduler.name,
                id,
                state,
                log: job.log,
                ...(outcome === undefined ? {} : { queuedMs: Math.max(0, outcome.startedAtMs - submittedAt) }),
              };
              const found = yield* committed(key, outcome !== undefined && outcome.status !== "failed");
              if (found !== undefined) {
                const byAnother = outcome?.status === "cached";
                return {
                  id: node.id,
                  stage: node.stage.name,
                  status: byAnother ? "cached" : "ran",
                  key,
                  manifest: found.manifest,
                  dir: found.dir,
                  durationMs:
                    outcome === undefined ? Date.now() - submittedAt : outcome.finishedAtMs - outcome.startedAtMs,
                  reason: byAnother ? "made by another run" : reason,
                  job: info,
                } satisfies NodeResult;
              }
              const why =
                end.kind === "ended"
                  ? `${jobName} ${end.state}${end.exitCode && end.exitCode !== "0:0" ? ` (exit ${end.exitCode})` : ""}: ` +
                    (outcome?.error ?? "no artifact was committed")
                  : end.kind === "unsatisfiable"
                    ? `${jobName} cannot start (${end.reason}), cancelled`
                    : `${jobName} is unknown to ${scheduler.name} for ${Math.round(options.unknownLimitMs / 1000)} s` +
                      (end.lastError === undefined ? "" : ` (${end.lastError})`);
              const message = `${why}; log ${job.log}`;
              if (attempt <= retries && end.kind !== "unsatisfiable") {
                emit({ type: "log", id: node.id, message: `${message}; resubmitting` });
                continue;
              }
              return yield* new JobFailed({ message, job: info });
            }
          }),
        );
      return { compute };
    });
