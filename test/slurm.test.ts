/**
 * The Slurm executor against a real single-node Slurm (slurmctld, slurmd, slurmdbd with accounting on MariaDB,
 * munge), started here by scripts/ci/slurm-up.sh and stopped by slurm-down.sh; nothing is mocked. Needs Slurm
 * installed (scripts/ci/install-slurm.sh, as root; CI runs it) and the real MNIST files in ../shared/datasets.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../pipeline/cli.ts";
import { paperPipeline } from "../stages/index.ts";
import { capture } from "./fixtures/capture.ts";

const repoRoot = resolve(import.meta.dirname, "..");
const dataDir = resolve(repoRoot, "../shared/datasets");
const haveData = existsSync(join(dataDir, "MNIST/raw/train-images-idx3-ubyte.gz"));
const slurmDir = process.env.PIPELINE_SLURM_DIR ?? "/tmp/pipeline-slurm";
const ciConfig = join(repoRoot, "configs/ci-replay.json");
/** Flags every run here shares: the CI data, the CPU backend (no GPU on this cluster), quick polls. */
const common = ["--data-dir", dataDir, "--offline", "--backend", "tensorflow", "--set", "slurm.pollMaxSeconds=2"];
/** `pipeline run TARGET` of the CI replay configuration on Slurm with the cache at `cache`; `extra` comes last. */
const slurmRun = (target: string, cache: string, ...extra: string[]) => [
  "run",
  target,
  "--config",
  ciConfig,
  "--executor",
  "slurm",
  "--cache-dir",
  cache,
  ...common,
  ...extra,
];

let work: string;

beforeAll(async () => {
  if (spawnSync("sbatch", ["--version"]).error !== undefined)
    throw new Error("sbatch not found: install Slurm with scripts/ci/install-slurm.sh (as root; CI does) first");
  execFileSync("bash", [join(repoRoot, "scripts/ci/slurm-up.sh")], { stdio: "pipe" });
  process.env.SLURM_CONF = join(slurmDir, "slurm.conf");
  work = await fs.mkdtemp(join(tmpdir(), "slurm-test-"));
}, 120_000);

afterAll(async () => {
  execFileSync("bash", [join(repoRoot, "scripts/ci/slurm-down.sh")], { stdio: "pipe" });
  if (work !== undefined) await fs.rm(work, { recursive: true, force: true });
}, 60_000);

/** The CLI in this process: exit code, stdout and stderr. */
async function pipeline(args: ReadonlyArray<string>) {
  const out = capture();
  const err = capture();
  const code = await main(paperPipeline, args, { out: out.stream, err: err.stream });
  return { code, out: out.text(), err: err.text() };
}

/** The CLI as its own process (it handles signals), with its stderr as it grows. */
function coordinator(args: ReadonlyArray<string>) {
  const child = spawn(process.execPath, [join(repoRoot, "bin/pipeline.mjs"), ...args], { cwd: repoRoot });
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
  return {
    child,
    exited,
    output: () => ({ out, err }),
    /** Resolves with the first match of `pattern` in stderr; rejects if the process ends first. */
    waitFor: async (pattern: RegExp): Promise<RegExpMatchArray> => {
      for (;;) {
        const match = err.match(pattern);
        if (match !== null) return match;
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode} before ${pattern}:\n${err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

const slurmSays = (command: string, args: ReadonlyArray<string>) => execFileSync(command, args, { encoding: "utf8" });

/** The job's state in accounting (sacct), e.g. CANCELLED; "" while accounting has not heard of it. */
const sacctState = (id: string) =>
  slurmSays("sacct", ["-j", id, "-X", "--noheader", "--parsable2", "--format=State"]).trim().split(" ")[0] ?? "";

describe.skipIf(!haveData)(`the Slurm executor on a single-node cluster (needs ${dataDir})`, () => {
  it("runs the CI replay configuration as Slurm jobs, with artifacts byte-identical to pipeline.lock.json", async () => {
    const cache = join(work, "ci");
    const run = await pipeline(slurmRun("all", cache, "--json"));
    expect(run.code, run.err).toBe(0);
    const nodes = (
      JSON.parse(run.out) as {
        nodes: Array<{
          id: string;
          status: string;
          key: string;
          artifacts: Record<string, { sha256: string }>;
          job?: { id: string; state: string };
        }>;
      }
    ).nodes;
    const lock = JSON.parse(await fs.readFile(join(repoRoot, "pipeline.lock.json"), "utf8")) as {
      nodes: Record<string, { key: string; artifacts: Record<string, string> }>;
    };
    expect(nodes.map((n) => n.id).sort()).toEqual(Object.keys(lock.nodes).sort());
    for (const n of nodes) {
      expect(n.status, n.id).toBe("ran");
      expect(n.job?.state, n.id).toBe("COMPLETED");
      expect(sacctState(n.job!.id), n.id).toBe("COMPLETED");
      expect(n.key, n.id).toBe(lock.nodes[n.id]!.key);
      const hashes = Object.fromEntries(Object.entries(n.artifacts).map(([name, a]) => [name, a.sha256]));
      expect(hashes, n.id).toMatchObject(lock.nodes[n.id]!.artifacts); // the lock leaves volatile tables out
    }
    expect(run.err).toMatch(/done {5}train\[mnist,L=1,seed=0\] \(.*; Slurm job \d+ COMPLETED, queued/);
    // The workers' notes (the backend, each epoch's outcome) reach the coordinator's output.
    expect(run.err).toMatch(/note {5}train\[mnist,L=1,seed=0\]: epoch 1\/1: test error/);

    const status = await pipeline(["status", "--config", ciConfig, "--cache-dir", cache]);
    expect(status.out).toMatch(/jobs of run run-\S+ \(logs in /);
    expect(status.out).toMatch(/\n {2}\d+ +COMPLETED +\d\d:\d\d:\d\d {2}report\[mnist,eps=0\.1\]/);
  }, 400_000);

  it("a training job cancelled with scancel fails its node with the state and log; a rerun resumes from its checkpoint", async () => {
    const cache = join(work, "ci"); // download and preprocess are cached by the test above
    const target = "train[mnist,L=1,seed=0]";
    const args = slurmRun(target, cache);
    const longer = ["--set", "mnist.epochs=3", "--set", "mnist.trainSubset=2048"];
    const first = coordinator([...args, ...longer]);
    const [, jobId] = await first.waitFor(/\(Slurm job (\d+)\)/);
    // Cancel it once its first epoch is checkpointed in the node's scratch directory, in the cache.
    for (;;) {
      const scratch = (await fs.readdir(join(cache, "scratch")).catch(() => [] as string[])).map((k) =>
        join(cache, "scratch", k, "checkpoint.json"),
      );
      if (scratch.some((file) => existsSync(file))) break;
      if (first.child.exitCode !== null) throw new Error(`finished before a checkpoint:\n${first.output().err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    slurmSays("scancel", [jobId!]);
    expect(await first.exited).toBe(1);
    const failed = first.output().err;
    expect(failed).toMatch(
      new RegExp(`FAILED {3}train\\[mnist,L=1,seed=0\\]: Slurm job ${jobId} CANCELLED.*; log \\S+\\.${jobId}\\.log`),
    );
    const log = /; log (\S+\.log)/.exec(failed)![1]!;
    expect(await fs.readFile(log, "utf8")).toMatch(/epoch 1\/3: test error/);

    const again = await pipeline([...args, ...longer]);
    expect(again.code, again.err).toBe(0);
    expect(again.err).toMatch(/note {5}train\[mnist,L=1,seed=0\]: resumed from epoch [12] /);
    expect(again.err).toMatch(/done {5}train\[mnist,L=1,seed=0\]/);
  }, 300_000);

  it("a failing stage fails its node with the job's Slurm state and the path of its log", async () => {
    const empty = join(work, "no-data");
    await fs.mkdir(empty, { recursive: true });
    const run = await pipeline(slurmRun("download", join(work, "failing"), "--data-dir", empty));
    expect(run.code).toBe(1);
    const failure = /FAILED {3}download\[mnist\]: Slurm job (\d+) FAILED(?: \(exit 1:0\))?: (.*); log (\S+)/.exec(
      run.err,
    );
    expect(failure, run.err).not.toBeNull();
    const [, jobId, message, log] = failure!;
    expect(message).toMatch(/MNIST|train-images/);
    expect(log).toBe(
      join(work, "failing", "logs", /slurm: run (\S+) /.exec(run.err)![1]!, `download_mnist_.${jobId}.log`),
    );
    expect(await fs.readFile(log!, "utf8")).toContain(message!);
    expect(sacctState(jobId!)).toBe("FAILED");
  }, 120_000);

  it("Ctrl-C cancels the run's queued jobs and exits with 130", async () => {
    // A job that takes every CPU of the node keeps the run's job pending.
    const blocker = slurmSays("sbatch", [
      "--parsable",
      "--cpus-per-task=2",
      "--job-name=blocker",
      "--output=/dev/null",
      "--wrap",
      "sleep 300",
    ]).trim();
    try {
      const cache = join(work, "interrupted");
      const run = coordinator(slurmRun("all", cache));
      const [, jobId] = await run.waitFor(/\(Slurm job (\d+)\)/);
      for (;;) {
        const state = slurmSays("squeue", ["-j", jobId!, "--noheader", "--format=%T"]).trim();
        if (state === "PENDING") break;
        await new Promise((r) => setTimeout(r, 200));
      }
      run.child.kill("SIGINT");
      expect(await run.exited).toBe(130);
      expect(run.output().err).toMatch(new RegExp(`cancelled Slurm job ${jobId}`));
      expect(slurmSays("squeue", ["-j", jobId!, "--noheader", "--states=PENDING,RUNNING"]).trim()).toBe("");
      for (let i = 0; sacctState(jobId!) !== "CANCELLED" && i < 50; i++) await new Promise((r) => setTimeout(r, 200));
      expect(sacctState(jobId!)).toBe("CANCELLED");
    } finally {
      slurmSays("scancel", [blocker]);
    }
  }, 120_000);

  it("two coordinators on one cache compute each node once", async () => {
    const cache = join(work, "shared");
    const args = slurmRun("preprocess", cache, "--json");
    const [a, b] = [coordinator(args), coordinator(args)];
    expect([await a.exited, await b.exited]).toEqual([0, 0]);
    const statuses = [a, b].map(
      (c) => (JSON.parse(c.output().out) as { nodes: Array<{ id: string; status: string }> }).nodes,
    );
    for (const id of ["download[mnist]", "preprocess[mnist]"]) {
      const ran = statuses.flat().filter((n) => n.id === id && n.status === "ran");
      expect(ran, `${id}: ${JSON.stringify(statuses)}`).toHaveLength(1);
    }
  }, 300_000);

  it("refuses, in one line with exit code 2, a malformed time limit, an unknown partition and a missing sbatch", async () => {
    const args = slurmRun("all", join(work, "refused"));
    const time = await pipeline([...args, "--set", "slurm.stages.train.time=two hours"]);
    expect([time.code, time.err]).toEqual([
      2,
      expect.stringMatching(
        /^pipeline: invalid configuration: slurm\.stages\.train\.time: expected a Slurm time limit/,
      ),
    ]);
    const partition = await pipeline([...args, "--set", "slurm.partition=debgu"]);
    expect([partition.code, partition.err]).toEqual([
      2,
      'pipeline: slurm.partition: unknown partition "debgu"; did you mean "debug"?\n',
    ]);
    const path = process.env.PATH;
    process.env.PATH = join(work, "empty-path");
    try {
      const missing = await pipeline(args);
      expect([missing.code, missing.err]).toEqual([
        2,
        expect.stringMatching(
          /^pipeline: --executor slurm: sbatch is not installed or not on PATH .*install-slurm\.sh/,
        ),
      ]);
    } finally {
      process.env.PATH = path;
    }
  }, 60_000);
});
