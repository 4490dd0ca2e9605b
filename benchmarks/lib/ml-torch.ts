/**
 * The PyTorch side of the training benchmark: benchmarks/torch_reference.py in `--serve` mode, kept alive for the
 * whole benchmark so each request measures only training steps (no interpreter start, no import). Requests are
 * answered one at a time; while Python waits for the next request it uses no CPU, so the two sides never overlap.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { benchmarksDir } from "./measure.ts";

export const TORCH_SCRIPT = path.join(benchmarksDir, "torch_reference.py");

export interface TorchRequest {
  readonly shape: readonly [number, number, number];
  readonly blocks: number;
  readonly batch: number;
  readonly warmup: number;
  readonly steps: number;
  readonly channelsLast?: boolean;
  readonly profile?: boolean;
}

export interface TorchOp {
  readonly name: string;
  readonly selfMs: number;
  readonly calls: number;
}

export interface TorchReply {
  readonly stepMs: number[];
  readonly threads: number;
  readonly torch: string;
  readonly ops?: TorchOp[];
}

/** The Python to use: $TORCH_PYTHON, else benchmarks/.venv/bin/python, else python3. */
export function torchPython(): string {
  const fromEnv = process.env["TORCH_PYTHON"];
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  const venv = path.join(benchmarksDir, ".venv", "bin", "python");
  return existsSync(venv) ? venv : "python3";
}

/** Why torch cannot be used from `python`, or undefined when `import torch` works. */
export function torchUnavailable(python = torchPython()): string | undefined {
  const result = spawnSync(python, ["-c", "import torch"], { encoding: "utf8", timeout: 120_000 });
  if (result.error !== undefined) return `${python}: ${result.error.message}`;
  if (result.status !== 0) {
    const lines = result.stderr.trim().split("\n");
    return `${python} cannot import torch (${lines[lines.length - 1] ?? `exit ${result.status}`}); pip install torch==2.13.0`;
  }
  return undefined;
}

/**
 * OpenMP's default busy-waiting makes PyTorch's two worker threads spin against each other and against other jobs
 * on a shared machine (measured here: 3-10x slower steps, very noisy); PASSIVE makes its workers sleep as
 * TensorFlow's thread pool does. "active" restores PyTorch's default, for an idle machine.
 */
export type OmpWaitPolicy = "passive" | "active";

export class TorchServer {
  private readonly lines: AsyncIterator<string>;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  /** Starts the server with `threads` intra-op threads (and 1 inter-op thread) and waits until torch is imported. */
  static async start(options: { threads: number; ompWait: OmpWaitPolicy; python?: string }): Promise<TorchServer> {
    const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(options.threads) };
    if (options.ompWait === "passive") env["OMP_WAIT_POLICY"] = "PASSIVE";
    else delete env["OMP_WAIT_POLICY"];
    const child = spawn(
      options.python ?? torchPython(),
      [TORCH_SCRIPT, "--serve", "--threads", String(options.threads)],
      {
        env,
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const server = new TorchServer(child);
    const first = await server.lines.next();
    if (first.done === true) throw new Error(`torch_reference.py exited before it was ready: ${stderr.trim()}`);
    const ready = JSON.parse(first.value) as { ready?: boolean; threads?: number };
    if (ready.ready !== true) throw new Error(`torch_reference.py: unexpected first line ${first.value}`);
    return server;
  }

  async measure(request: TorchRequest): Promise<TorchReply> {
    this.child.stdin.write(`${JSON.stringify(request)}\n`);
    const line = await this.lines.next();
    if (line.done === true) throw new Error("torch_reference.py exited");
    const reply = JSON.parse(line.value) as TorchReply | { error: string };
    if ("error" in reply) throw new Error(`torch_reference.py: ${reply.error}`);
    return reply;
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.child.once("close", () => resolve()));
    this.child.stdin.end();
    await exited;
  }
}
