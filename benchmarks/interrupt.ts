/**
 * Ctrl-C latency during training, and resumption from the last epoch checkpoint, measured on the real CLI.
 *
 *   node --import tsx benchmarks/interrupt.ts [--node 'train[mnist,L=4,seed=0]'] [--delays 0,5,10] [--epochs 3]
 *        [--data-dir ../shared/datasets] [--backend tensorflow] [--cache-dir DIR] [--out interrupt] [--results-dir DIR]
 *
 * Runs `bin/pipeline.mjs run NODE --preset smoke --set <dataset>.epochs=E --offline` with piped output (so the plain,
 * non-TTY progress lines), once per delay: it waits until a progress line reports a training step, waits the delay,
 * sends SIGINT and times (a) until the CLI prints that it is interrupting (its handler ran, i.e. the event loop got
 * a turn) and (b) until the process exits. Every run shares one cache, so each rerun continues from the checkpoint
 * of the last completed epoch: its first step line must name the epoch after the one the checkpoint holds. A last
 * run waits until the next epoch's checkpoint is written, interrupts, and a final run checks it resumes after it.
 * Writes benchmarks/results/<out>.json.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { median, parseOptions, repoRoot, round, writeResults } from "./lib/measure.ts";

const options = parseOptions(process.argv.slice(2), [
  "node",
  "delays",
  "epochs",
  "data-dir",
  "backend",
  "cache-dir",
  "out",
  "results-dir",
]);
const node = options.get("node") ?? "train[mnist,L=4,seed=0]";
const dataset = /^train\[(\w+),/.exec(node)?.[1];
if (dataset === undefined)
  throw new Error(`--node must be a training node like 'train[mnist,L=4,seed=0]', not '${node}'`);
const delaysSeconds = (options.get("delays") ?? "0,5,10").split(",").map((text) => {
  const seconds = Number(text);
  if (!(seconds >= 0)) throw new Error(`--delays: expected seconds >= 0, got '${text}'`);
  return seconds;
});
const epochs = Number(options.get("epochs") ?? 3);
const dataDir = path.resolve(options.get("data-dir") ?? path.join(repoRoot, "../shared/datasets"));
const ownCache = !options.has("cache-dir");
const cacheDir = options.get("cache-dir") ?? mkdtempSync(path.join(tmpdir(), "interrupt-bench-"));
const cliArgs = (target: string) => [
  path.join(repoRoot, "bin/pipeline.mjs"),
  "run",
  target,
  "--preset",
  "smoke",
  "--set",
  `${dataset}.epochs=${epochs}`,
  "--data-dir",
  dataDir,
  "--cache-dir",
  cacheDir,
  "--backend",
  options.get("backend") ?? "tensorflow",
  "--offline",
];
const STEP_LINE = /epoch (\d+)\/\d+ step (\d+)\/(\d+)/;
const STEP_WAIT_MS = 20 * 60_000;

type Checkpoint = { readonly epochsCompleted: number };

/** Epochs held by the node's scratch checkpoint (0 when none has been written yet). */
function checkpointEpochs(): number {
  const scratch = path.join(cacheDir, "scratch");
  if (!existsSync(scratch)) return 0;
  for (const key of readdirSync(scratch)) {
    const file = path.join(scratch, key, "checkpoint.json");
    if (existsSync(file)) return (JSON.parse(readFileSync(file, "utf8")) as Checkpoint).epochsCompleted;
  }
  return 0;
}

interface Interruption {
  /** When SIGINT was sent, relative to the first step line of the run. */
  readonly delaySeconds: number | "after checkpoint";
  readonly checkpointBefore: number;
  /** Epoch of the run's first step line: resumption means checkpointBefore + 1. */
  readonly firstEpoch: number;
  /** The last step progress line seen before SIGINT (plain output prints one at most every 10 s). */
  readonly lastStep: string;
  readonly handlerMs: number | null;
  readonly exitMs: number;
  readonly exitCode: number | null;
  readonly checkpointAfter: number;
}

/** One CLI run of the node, interrupted once `trigger` resolves (after its first step line). */
async function interruptedRun(
  delaySeconds: Interruption["delaySeconds"],
  trigger: () => Promise<void>,
): Promise<Interruption> {
  const checkpointBefore = checkpointEpochs();
  const child = spawn(process.execPath, cliArgs(node), { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let firstEpoch: number | undefined;
  let lastStep = "";
  let sentAt: number | undefined = undefined; // set when SIGINT is sent; the line handlers read it before that
  let handlerAt: number | undefined;
  let announceFirstStep: () => void = () => {};
  const firstStep = new Promise<void>((resolve) => (announceFirstStep = resolve));
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      const step = STEP_LINE.exec(line);
      if (step !== null) {
        firstEpoch ??= Number(step[1]);
        if (sentAt === undefined) lastStep = step[0];
        announceFirstStep();
      }
      if (line.startsWith("interrupting") && sentAt !== undefined) handlerAt ??= performance.now();
      if (/^(FAILED|done) /.test(line)) process.stdout.write(`  ${line}\n`);
    });
  }
  const outcome = await Promise.race([
    firstStep.then(() => "step" as const),
    exited.then(() => "exited" as const),
    sleep(STEP_WAIT_MS).then(() => "timeout" as const),
  ]);
  if (outcome !== "step") {
    child.kill("SIGKILL");
    throw new Error(`${node}: no training step reported (${outcome}); is the node already cached in ${cacheDir}?`);
  }
  await trigger();
  sentAt = performance.now();
  child.kill("SIGINT");
  const exitCode = await exited;
  const exitedAt = performance.now();
  const result: Interruption = {
    delaySeconds,
    checkpointBefore,
    firstEpoch: firstEpoch!,
    lastStep,
    handlerMs: handlerAt === undefined ? null : round(handlerAt - sentAt, 4),
    exitMs: round(exitedAt - sentAt, 4),
    exitCode,
    checkpointAfter: checkpointEpochs(),
  };
  const resumed = result.firstEpoch === checkpointBefore + 1 ? "resumed ok" : "RESUME MISMATCH";
  console.log(
    `delay ${delaySeconds}: SIGINT after "${lastStep}"; handler ${result.handlerMs} ms, ` +
      `exit ${result.exitMs} ms (code ${exitCode}); checkpoint ${checkpointBefore} -> ${result.checkpointAfter} epochs; ` +
      `first epoch ${firstEpoch} (${resumed})`,
  );
  return result;
}

const prepare = spawn(process.execPath, cliArgs("preprocess"), { cwd: repoRoot, stdio: "inherit" });
const prepared = await new Promise<number | null>((resolve) => prepare.on("exit", resolve));
if (prepared !== 0) throw new Error(`preparing the data failed (exit ${prepared})`);

const runs: Interruption[] = [];
try {
  for (const delay of delaysSeconds) runs.push(await interruptedRun(delay, () => sleep(1000 * delay)));
  const target = checkpointEpochs() + 1;
  if (target < epochs) {
    const committed = async () => {
      while (checkpointEpochs() < target) await sleep(200);
    };
    runs.push(await interruptedRun("after checkpoint", committed));
    if (checkpointEpochs() < epochs) runs.push(await interruptedRun(0, async () => {}));
  }
} finally {
  if (ownCache) rmSync(cacheDir, { recursive: true, force: true });
}

const exits = runs.map((r) => r.exitMs);
const summary = {
  node,
  epochs,
  exitMedianMs: round(median(exits), 4),
  exitMaxMs: round(Math.max(...exits), 4),
  allExitedInterrupted: runs.every((r) => r.exitCode === 130),
  allResumed: runs.every((r) => r.firstEpoch === r.checkpointBefore + 1),
};
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
console.log(
  `SIGINT to exit: median ${seconds(summary.exitMedianMs)}, max ${seconds(summary.exitMaxMs)} over ${runs.length} runs; ` +
    `exit code 130 every time: ${summary.allExitedInterrupted}; resumed every time: ${summary.allResumed}`,
);
const file = writeResults(options.get("out") ?? "interrupt", { summary, runs }, options.get("results-dir"));
console.log(`wrote ${file}`);
