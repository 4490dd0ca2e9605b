/**
 * The Slurm scheduler of the batch executor (batch.ts): `sbatch` submits a node's worker as a job named after the
 * run, one `sacct --name RUNID --starttime ...` per poll tracks all of the run's jobs (`squeue` fills in why a job
 * waits, and stands in when accounting does not answer), `scancel` cancels. Its settings are the configuration's
 * `slurm` section ({@link SlurmSettings}); {@link checkSlurm} turns a cluster that cannot take the run into one line.
 *
 * Resources come from the stage declaration: CPUs, memory and time limit from its `jobResources` (else
 * {@link DEFAULT_JOB_RESOURCES}), each overridable per stage in `slurm.stages.<stage>`; a gpu stage's job asks for
 * `slurm.gpus` GPUs (default 1) unless the pipeline's flags say its stages will not use one (a CPU backend).
 */
import { execFile } from "node:child_process";
import * as path from "node:path";
import { Effect, Schema } from "effect";
import { errnoCode, writeFileAtomic } from "../../cache/fsutil.ts";
import { UsageError } from "../commands/errors.ts";
import type { JobResources } from "../stage.ts";
import { didYouMean } from "../suggest.ts";
import { SchedulerError, type BatchScheduler, type JobRequest, type JobState } from "./batch.ts";
import { nodeFileStem } from "./run-record.ts";

const PositiveInt = Schema.Int.pipe(Schema.positive());

/** Slurm's time limit forms: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS (or unlimited). */
const TimeLimit = Schema.String.pipe(
  Schema.pattern(/^(\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}|UNLIMITED|INFINITE)$/, {
    message: () => "expected a Slurm time limit: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS",
  }),
);
const Memory = Schema.String.pipe(
  Schema.pattern(/^\d+[KMGT]?$/, { message: () => 'expected a Slurm memory size such as "8G" or "500M"' }),
);

/** One stage's job resources as the configuration overrides them. */
const StageResources = Schema.Struct({
  cpus: Schema.optional(PositiveInt),
  mem: Schema.optional(Memory),
  time: Schema.optional(TimeLimit),
});

/** The configuration's `slurm` section. */
export const SlurmSettings = Schema.Struct({
  partition: Schema.optional(Schema.NonEmptyString),
  account: Schema.optional(Schema.NonEmptyString),
  qos: Schema.optional(Schema.NonEmptyString),
  /** More `sbatch` arguments for every job, e.g. ["--constraint=a100"]. */
  sbatchArgs: Schema.optional(Schema.Array(Schema.String)),
  /** GPUs per job of a gpu stage (default 1); 0 for a partition without GPUs. */
  gpus: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  /** The first wait between two polls (default 1 s); it grows while nothing changes, up to pollMaxSeconds. */
  pollSeconds: Schema.optional(Schema.Number.pipe(Schema.positive())),
  /** The longest wait between two polls (default 60 s). */
  pollMaxSeconds: Schema.optional(Schema.Number.pipe(Schema.positive())),
  /** Per stage name: CPUs, memory and time limit of its jobs. */
  stages: Schema.optional(Schema.Record({ key: Schema.String, value: StageResources })),
});
export type SlurmSettings = typeof SlurmSettings.Type;

/** A job's resources when neither its stage nor the configuration say. */
export const DEFAULT_JOB_RESOURCES = { cpus: 1, mem: "4G", time: "2:00:00" } as const;

/** Reasons a pending job gives when it can never start as submitted: waiting on would be forever. */
const UNSATISFIABLE_REASONS = new Set([
  "ReqNodeNotAvail",
  "PartitionConfig",
  "PartitionNodeLimit",
  "PartitionTimeLimit",
  "BadConstraints",
  "InvalidAccount",
  "InvalidQOS",
  "QOSMaxGRESPerJob",
  "QOSMaxCpuPerJobLimit",
  "QOSMaxMemoryPerJob",
  "QOSMaxWallDurationPerJobLimit",
]);

const QUEUED = new Set(["PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "SUSPENDED"]);
const ENDED = new Set([
  "COMPLETED",
  "FAILED",
  "TIMEOUT",
  "OUT_OF_MEMORY",
  "NODE_FAIL",
  "PREEMPTED",
  "CANCELLED",
  "BOOT_FAIL",
  "DEADLINE",
  "REVOKED",
  "SPECIAL_EXIT",
]);

/** A Slurm state word (`CANCELLED by 0` -> CANCELLED) as a job state. */
const jobState = (word: string, extra: { reason?: string; exitCode?: string; elapsed?: string }): JobState => {
  const state = word.split(" ")[0]!.replace(/\+$/, "");
  const elapsed = extra.elapsed === undefined || extra.elapsed === "" ? {} : { elapsed: extra.elapsed };
  if (ENDED.has(state))
    return { phase: "ended", state, ...elapsed, ...(extra.exitCode ? { exitCode: extra.exitCode } : {}) };
  if (QUEUED.has(state)) {
    const reason = extra.reason;
    return reason === undefined || reason === "" || reason === "None"
      ? { phase: "queued", ...elapsed }
      : { phase: "queued", reason, unsatisfiable: UNSATISFIABLE_REASONS.has(reason), ...elapsed };
  }
  return { phase: "running", ...elapsed };
};

/** Runs a Slurm command; its stdout, or a SchedulerError with its first line of complaint. */
const slurm = (command: string, args: ReadonlyArray<string>, timeoutMs = 60_000) =>
  Effect.async<string, SchedulerError>((resume) => {
    const child = execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error === null) return resume(Effect.succeed(stdout));
      const said =
        `${stderr}`
          .trim()
          .split("\n")
          .find((line) => line.trim() !== "") ?? error.message;
      const missing = errnoCode(error) === "ENOENT" ? `${command} is not on PATH` : said;
      resume(Effect.fail(new SchedulerError({ message: `${command}: ${missing}` })));
    });
    return Effect.sync(() => child.kill());
  });

/** `sacct`'s local-time form of a date. */
const slurmTime = (date: Date): string => {
  const pad = (n: number) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
};

/** The resources of one job of a stage: its declaration, then the configuration's overrides. */
export const jobResources = (
  settings: SlurmSettings,
  request: Pick<JobRequest, "stage" | "resource" | "jobResources">,
  usesGpu: boolean,
): Required<JobResources> & { readonly gpus: number } => {
  const override = settings.stages?.[request.stage];
  return {
    cpus: override?.cpus ?? request.jobResources?.cpus ?? DEFAULT_JOB_RESOURCES.cpus,
    mem: override?.mem ?? request.jobResources?.mem ?? DEFAULT_JOB_RESOURCES.mem,
    time: override?.time ?? request.jobResources?.time ?? DEFAULT_JOB_RESOURCES.time,
    gpus: request.resource === "gpu" && usesGpu ? (settings.gpus ?? 1) : 0,
  };
};

/** The job script every job of a run runs: the worker command it is given as arguments. */
const JOB_SCRIPT = `#!/bin/sh
# A node of a pipeline run as a Slurm job: runs the worker command given as its arguments.
exec "$@"
`;

/**
 * The Slurm scheduler for one run started at `since`. `usesGpu`: whether gpu stages will use a GPU under the run's
 * flags.
 */
export const slurmScheduler = (settings: SlurmSettings, since: Date, usesGpu: boolean): BatchScheduler => {
  const logTemplate = (request: JobRequest) => path.join(request.runDir, `${nodeFileStem(request.nodeId)}.%j.log`);
  const scriptOf = (request: JobRequest) => path.join(request.runDir, "slurm-job.sh");
  // Written atomically: jobs submitted at the same moment must never read it half-written (sbatch: "Batch script is
  // empty!").
  const writeScript = (file: string) =>
    Effect.tryPromise({
      try: () => writeFileAtomic(file, JOB_SCRIPT),
      catch: (e) => new SchedulerError({ message: `cannot write ${file}: ${(e as Error).message}` }),
    });
  const startTime = slurmTime(new Date(since.getTime() - 60_000));

  const squeue = (runId: string) =>
    slurm("squeue", ["--noheader", `--name=${runId}`, "--states=all", "--format=%i|%T|%r|%M"]).pipe(
      Effect.map((out) => {
        const states = new Map<string, JobState>();
        for (const line of out.split("\n")) {
          const [id, state, reason, elapsed] = line.trim().split("|");
          if (id && state)
            states.set(id, jobState(state, { ...(reason ? { reason } : {}), ...(elapsed ? { elapsed } : {}) }));
        }
        return states;
      }),
    );
  const sacct = (runId: string) =>
    slurm("sacct", [
      `--name=${runId}`,
      `--starttime=${startTime}`,
      "--allocations",
      "--noheader",
      "--parsable2",
      "--format=JobIDRaw,State,ExitCode,Elapsed",
    ]).pipe(
      Effect.map((out) => {
        const states = new Map<string, JobState>();
        for (const line of out.split("\n")) {
          const [id, state, exitCode, elapsed] = line.trim().split("|");
          // A requeued job has one line per run: the last one is current.
          if (id && state)
            states.set(id, jobState(state, { ...(exitCode ? { exitCode } : {}), ...(elapsed ? { elapsed } : {}) }));
        }
        return states;
      }),
    );

  return {
    name: "Slurm",
    submit: (request) =>
      Effect.gen(function* () {
        const script = scriptOf(request);
        yield* writeScript(script);
        const r = jobResources(settings, request, usesGpu);
        const args = [
          "--parsable",
          `--job-name=${request.name}`,
          `--output=${logTemplate(request)}`,
          `--chdir=${request.cwd}`,
          `--cpus-per-task=${r.cpus}`,
          `--mem=${r.mem}`,
          `--time=${r.time}`,
          "--no-requeue",
          ...(r.gpus > 0 ? [`--gpus=${r.gpus}`] : []),
          ...(settings.partition === undefined ? [] : [`--partition=${settings.partition}`]),
          ...(settings.account === undefined ? [] : [`--account=${settings.account}`]),
          ...(settings.qos === undefined ? [] : [`--qos=${settings.qos}`]),
          ...(settings.sbatchArgs ?? []),
          script,
          ...request.argv,
        ];
        const out = yield* slurm("sbatch", args);
        const id = out.trim().split(";")[0]!;
        if (!/^\d+(_\d+)?$/.test(id)) return yield* new SchedulerError({ message: `sbatch answered "${out.trim()}"` });
        return id;
      }),
    poll: (runId, ids) =>
      Effect.gen(function* () {
        const wanted = new Set(ids);
        const accounted = yield* Effect.either(sacct(runId));
        // Without accounting, squeue alone (it forgets a job minutes after it ends: then the job is unknown).
        if (accounted._tag === "Left") return yield* Effect.orElse(squeue(runId), () => Effect.fail(accounted.left));
        const states = new Map([...accounted.right].filter(([id]) => wanted.has(id)));
        const waiting = ids.some((id) => states.get(id) === undefined || states.get(id)!.phase === "queued");
        if (!waiting) return states;
        // Why a job waits is only in squeue, and a job sacct has not heard of yet may already be there.
        const queued = yield* Effect.orElseSucceed(squeue(runId), () => new Map<string, JobState>());
        for (const id of ids) {
          const fromQueue = queued.get(id);
          const fromAccounting = states.get(id);
          if (fromQueue !== undefined && (fromAccounting === undefined || fromAccounting.phase === "queued"))
            states.set(id, fromQueue);
        }
        return states;
      }),
    cancel: (ids) => (ids.length === 0 ? Effect.void : Effect.ignore(slurm("scancel", ids))),
    log: (request, id) => logTemplate(request).replace("%j", id),
  };
};

/**
 * Whether Slurm can take a run with these settings: `sbatch` installed, the controller answering, the partition
 * known, and every stage named in `slurm.stages` a stage of the pipeline. Otherwise one line (exit code 2).
 */
export const checkSlurm = (
  settings: SlurmSettings,
  stageNames: ReadonlyArray<string>,
): Effect.Effect<void, UsageError> =>
  Effect.gen(function* () {
    const unknownStage = Object.keys(settings.stages ?? {}).find((name) => !stageNames.includes(name));
    if (unknownStage !== undefined) {
      const hint = didYouMean(unknownStage, stageNames) || ` (stages: ${stageNames.join(", ")})`;
      return yield* new UsageError({ message: `slurm.stages.${unknownStage}: unknown stage${hint}` });
    }
    yield* slurm("sbatch", ["--version"], 30_000).pipe(
      Effect.mapError(
        () =>
          new UsageError({
            message:
              "--executor slurm: sbatch is not installed or not on PATH " +
              "(a single-node test cluster: scripts/ci/install-slurm.sh, then scripts/ci/slurm-up.sh)",
          }),
      ),
    );
    const partitions = yield* slurm("sinfo", ["--noheader", "--format=%R"], 30_000).pipe(
      Effect.map((out) => [
        ...new Set(
          out
            .split("\n")
            .map((p) => p.trim())
            .filter((p) => p !== ""),
        ),
      ]),
      Effect.mapError(
        (e) => new UsageError({ message: `--executor slurm: the Slurm controller does not answer (${e.message})` }),
      ),
    );
    const { partition } = settings;
    if (partition !== undefined && !partitions.includes(partition)) {
      const hint = didYouMean(partition, partitions) || ` (partitions: ${partitions.join(", ")})`;
      return yield* new UsageError({ message: `slurm.partition: unknown partition "${partition}"${hint}` });
    }
  });
