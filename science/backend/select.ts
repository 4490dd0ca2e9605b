/**
 * Run-time backend choice (`--backend auto|tensorflow-gpu|tensorflow|cpu`).
 *
 * `auto` takes the best native backend that works here (GPU, else CPU) and
 * otherwise FAILS: the pure-JS `cpu` backend is ~1000x slower for training, so
 * it is used only when asked for by name. Before TensorFlow loads, the
 * environment is fixed for reproducibility (thread counts, deterministic ops,
 * oneDNN) and logging (quiet unless verbose: TensorFlow's log level, and stderr
 * is silenced while its library loads), and the values are returned for
 * artifact manifests.
 * Probing is injectable so the selection rules can be tested with fakes.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type * as tfjs from "@tensorflow/tfjs";
import { expectedBindingPath, STDERR_GATE_PATH } from "./setup.ts";

/**
 * The TensorFlow.js module, typed as a namespace import like science/resnet.ts's TF, so either passes for the other.
 */
export type Tf = typeof tfjs;
export type BackendName = "tensorflow-gpu" | "tensorflow" | "cpu";
export type NativeBackendName = Exclude<BackendName, "cpu">;
export type BackendChoice = "auto" | BackendName;
export const BACKEND_CHOICES: readonly BackendChoice[] = ["auto", "tensorflow-gpu", "tensorflow", "cpu"];

export interface BackendInfo {
  readonly name: BackendName;
  /** The loaded TensorFlow.js module, its active backend set. */
  readonly tf: Tf;
  /** Version of what runs the kernels: the TensorFlow C library (native), or tfjs-core (cpu). */
  readonly tfVersion: string;
  readonly tfjsVersion: string;
  /** Thread pool sizes in effect (1/1 for the single-threaded pure-JS backend). */
  readonly threads: { readonly intraOp: number; readonly interOp: number };
  readonly deterministic: boolean;
  /** The TF_* environment variables in effect, for manifests. */
  readonly env: Readonly<Record<string, string>>;
}

/** The backend asked for cannot be used; the message is one line meant for the user. */
export class BackendUnavailableError extends Error {
  override readonly name = "BackendUnavailableError";
}

export interface LoadedTf {
  readonly tf: Tf;
  readonly tfVersion: string;
  readonly tfjsVersion: string;
}

/** What selection needs to know about this machine; fakes replace it in tests. */
export interface BackendProbe {
  /**
   * Why this native backend cannot be used here, or undefined if it can. Must not load TensorFlow into this process.
   */
  nativeUnavailable(name: NativeBackendName): Promise<string | undefined>;
  /**
   * Loads the native package into this process (the environment is already configured); `quiet` hides what
   * TensorFlow writes to stderr while its library loads.
   */
  loadNative(name: NativeBackendName, options: { readonly quiet: boolean }): Promise<LoadedTf>;
  /** Loads pure-JS TensorFlow.js with its `cpu` backend. */
  loadPureJs(): Promise<LoadedTf>;
}

export interface SelectOptions {
  readonly probe?: BackendProbe;
  /** Overrides TF_NUM_INTRAOP_THREADS (default: that variable, else the number of CPUs). */
  readonly intraOpThreads?: number;
  /** Overrides TF_NUM_INTEROP_THREADS (default: that variable, else 1; eager ops run one at a time). */
  readonly interOpThreads?: number;
  /** Environment to configure; defaults to process.env, which TensorFlow reads when it loads. */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Show TensorFlow's own C++ INFO/WARNING logs (TF_CPP_MIN_LOG_LEVEL=0 instead of 2, and stderr left open while
   * its library loads).
   */
  readonly verbose?: boolean;
}

const SETUP_HINT = "run `npx pipeline setup-backend`";

/** Thread counts TensorFlow was initialised with in this process; they cannot change afterwards. */
let processThreads: TensorFlowSettings["threads"] | undefined;

/** Picks, configures and loads the backend. Throws BackendUnavailableError with a one-line reason. */
export async function selectBackend(choice: string, options: SelectOptions = {}): Promise<BackendInfo> {
  const requested = parseBackendChoice(choice);
  const probe = options.probe ?? nativeProbe;
  const env = options.env ?? process.env;
  const settings = tensorFlowSettings(env, options);
  const isProcessEnv = env === process.env;
  if (isProcessEnv && processThreads !== undefined && requested !== "cpu") {
    const { intraOp, interOp } = processThreads;
    if (intraOp !== settings.threads.intraOp || interOp !== settings.threads.interOp) {
      throw new BackendUnavailableError(
        `TensorFlow is already initialised in this process with ${intraOp} intra-op / ${interOp} inter-op threads`,
      );
    }
  }
  Object.assign(env, settings.env);

  if (requested === "cpu") {
    const loaded = await probe.loadPureJs();
    return { name: "cpu", ...loaded, threads: { intraOp: 1, interOp: 1 }, deterministic: true, env: settings.env };
  }

  const name = requested === "auto" ? await bestNative(probe) : requested;
  if (requested !== "auto") {
    const reason = await probe.nativeUnavailable(name);
    if (reason !== undefined) {
      const hint =
        name === "tensorflow-gpu"
          ? "run `npx pipeline setup-backend --gpu` on a machine with an NVIDIA GPU and CUDA 12"
          : SETUP_HINT;
      throw new BackendUnavailableError(`backend '${name}' is unavailable: ${reason}; ${hint}`);
    }
  }
  let loaded: LoadedTf;
  try {
    loaded = await probe.loadNative(name, { quiet: options.verbose !== true });
  } catch (error) {
    if (error instanceof BackendUnavailableError) throw error;
    throw new BackendUnavailableError(`backend '${name}' failed to load: ${firstLine(error)}; ${SETUP_HINT}`);
  }
  if (isProcessEnv) processThreads = settings.threads;
  return { name, ...loaded, threads: settings.threads, deterministic: settings.deterministic, env: settings.env };
}

/** Validates a --backend value. */
export function parseBackendChoice(choice: string): BackendChoice {
  const known = BACKEND_CHOICES.find((candidate) => candidate === choice);
  if (known === undefined) {
    throw new BackendUnavailableError(`unknown backend '${choice}' (choose one of: ${BACKEND_CHOICES.join(", ")})`);
  }
  return known;
}

/** auto: GPU if usable, else native CPU, else an error; never the pure-JS backend. */
async function bestNative(probe: BackendProbe): Promise<NativeBackendName> {
  if ((await probe.nativeUnavailable("tensorflow-gpu")) === undefined) return "tensorflow-gpu";
  const reason = await probe.nativeUnavailable("tensorflow");
  if (reason === undefined) return "tensorflow";
  throw new BackendUnavailableError(
    `no native TensorFlow backend (${reason}); ${SETUP_HINT}, or pass --backend cpu to accept the ~1000x slower pure-JS backend`,
  );
}

export interface TensorFlowSettings {
  readonly threads: { readonly intraOp: number; readonly interOp: number };
  readonly deterministic: boolean;
  /** The variables to put in the environment before TensorFlow loads; also what manifests record. */
  readonly env: Readonly<Record<string, string>>;
}

/**
 * The environment TensorFlow should initialise with, given the current one
 * (not modified): thread pool sizes, always fixed because results differ
 * bitwise between intra-op counts (explicit options win over the environment),
 * and, unless already set, TF_DETERMINISTIC_OPS=1, TF_ENABLE_ONEDNN_OPTS=1 and
 * TF_CPP_MIN_LOG_LEVEL=2, which hides the C++ INFO/WARNING logs routed through
 * TensorFlow's own logger; `verbose` sets it to 0 whatever the environment says.
 * Two lines escape it (even at 3): TensorFlow 2.21 writes them straight through
 * absl logging while its library loads, which no environment variable filters:
 * absl's "All log messages before absl::InitializeLog() ..." and oneDNN's "custom
 * operations are on" note. TF_ENABLE_ONEDNN_OPTS=0 would remove them but change
 * results bitwise, so instead, unless verbose, nativeProbe.loadNative points
 * stderr at /dev/null for the duration of the load (the stderr gate that
 * setup-backend builds; without it the two lines show).
 */
export function tensorFlowSettings(
  env: NodeJS.ProcessEnv,
  options: Pick<SelectOptions, "intraOpThreads" | "interOpThreads" | "verbose"> = {},
): TensorFlowSettings {
  const intraOp = options.intraOpThreads ?? threadCountFromEnv(env, "TF_NUM_INTRAOP_THREADS") ?? availableParallelism();
  const interOp = options.interOpThreads ?? threadCountFromEnv(env, "TF_NUM_INTEROP_THREADS") ?? 1;
  for (const [variable, count] of [
    ["TF_NUM_INTRAOP_THREADS", intraOp],
    ["TF_NUM_INTEROP_THREADS", interOp],
  ] as const) {
    if (!Number.isInteger(count) || count < 1)
      throw new BackendUnavailableError(`${variable} must be a positive integer, got ${count}`);
  }
  const variables: Record<string, string> = {
    TF_NUM_INTRAOP_THREADS: String(intraOp),
    TF_NUM_INTEROP_THREADS: String(interOp),
    TF_DETERMINISTIC_OPS: env["TF_DETERMINISTIC_OPS"] ?? "1",
    // TensorFlow's x86 default, made explicit because it changes results bitwise.
    TF_ENABLE_ONEDNN_OPTS: env["TF_ENABLE_ONEDNN_OPTS"] ?? "1",
    TF_CPP_MIN_LOG_LEVEL: options.verbose === true ? "0" : (env["TF_CPP_MIN_LOG_LEVEL"] ?? "2"),
  };
  const cudaDevices = env["CUDA_VISIBLE_DEVICES"];
  if (cudaDevices !== undefined) variables["CUDA_VISIBLE_DEVICES"] = cudaDevices;
  const deterministic = tensorFlowReadsAsTrue(variables["TF_DETERMINISTIC_OPS"]);
  return { threads: { intraOp, interOp }, deterministic, env: variables };
}

/** Whether TensorFlow reads a boolean environment variable (TF_DETERMINISTIC_OPS, TF_ENABLE_ONEDNN_OPTS) as on. */
export function tensorFlowReadsAsTrue(value: string | undefined): boolean {
  return ["1", "true"].includes((value ?? "").toLowerCase());
}

function threadCountFromEnv(env: NodeJS.ProcessEnv, variable: string): number | undefined {
  const raw = env[variable];
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d+$/.test(raw.trim()))
    throw new BackendUnavailableError(`${variable} must be a positive integer, got '${raw}'`);
  return Number(raw);
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0]?.trim() ?? "";
}

// ---------------------------------------------------------------------------
// The real probe.

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const requireFromRepo = createRequire(path.join(repoRoot, "package.json"));

const PACKAGES: Record<NativeBackendName, string> = {
  tensorflow: "@tensorflow/tfjs-node",
  "tensorflow-gpu": "@tensorflow/tfjs-node-gpu",
};

/** Checks this machine: package installed, binding built, and for the GPU a GPU that TensorFlow can see. */
export const nativeProbe: BackendProbe = {
  async nativeUnavailable(name) {
    const packageName = PACKAGES[name];
    let packageDir: string;
    try {
      packageDir = path.dirname(requireFromRepo.resolve(`${packageName}/package.json`));
    } catch {
      return `${packageName} is not installed`;
    }
    if (!existsSync(expectedBindingPath(packageDir))) return `the native binding of ${packageName} is not built`;
    return name === "tensorflow-gpu" ? gpuUnavailable() : undefined;
  },

  async loadNative(name, { quiet }) {
    const entry = requireFromRepo.resolve(PACKAGES[name]);
    if (processThreads === undefined && requireFromRepo.cache[entry] !== undefined) {
      throw new BackendUnavailableError(
        `${PACKAGES[name]} was loaded before its environment was set; load TensorFlow only through selectBackend`,
      );
    }
    const gate = quiet ? loadStderrGate() : undefined;
    gate?.silence();
    let tf: Tf;
    try {
      tf = requireFromRepo(entry) as Tf;
    } finally {
      gate?.restore();
    }
    await tf.setBackend("tensorflow");
    await tf.ready();
    const binding = (tf.backend() as unknown as { binding?: { TF_Version?: string } }).binding;
    return { tf, tfVersion: binding?.TF_Version ?? "unknown", tfjsVersion: tf.version.tfjs };
  },

  async loadPureJs() {
    const tf = requireFromRepo("@tensorflow/tfjs") as Tf;
    await tf.setBackend("cpu");
    await tf.ready();
    return { tf, tfVersion: tf.version["tfjs-core"], tfjsVersion: tf.version.tfjs };
  },
};

/** The stderr gate addon (see STDERR_GATE_PATH). */
interface StderrGate {
  /** Points fd 2 at /dev/null, keeping the real stderr aside. */
  silence(): void;
  /** Points fd 2 back at the real stderr. */
  restore(): void;
}

/**
 * The stderr gate if setup-backend built it, else undefined (an older checkout, no compiler): it is optional, so a
 * gate that is missing or does not load just leaves stderr as it is.
 */
function loadStderrGate(): StderrGate | undefined {
  if (!existsSync(STDERR_GATE_PATH)) return undefined;
  try {
    return requireFromRepo(STDERR_GATE_PATH) as StderrGate;
  } catch {
    return undefined;
  }
}

/**
 * Whether TensorFlow sees a GPU: loads tfjs-node-gpu in a child process with
 * INFO logging and looks for TensorFlow's "Created device .../device:GPU:N" line
 * (the binding has no device-listing call). Untested here: no GPU machine has Node.js.
 */
async function gpuUnavailable(): Promise<string | undefined> {
  const visible = process.env["CUDA_VISIBLE_DEVICES"];
  if (visible !== undefined && ["", "-1"].includes(visible.trim()))
    return `CUDA_VISIBLE_DEVICES='${visible}' hides all GPUs`;
  const script = `const tf = require("@tensorflow/tfjs-node-gpu"); tf.add(tf.ones([2]), tf.ones([2])).dataSync();`;
  const output = await runNode(script, { ...process.env, TF_CPP_MIN_LOG_LEVEL: "0" });
  if (output.code !== 0)
    return `tfjs-node-gpu does not load: ${
      output.text
        .trim()
        .split("\n")
        .find((line) => /Error/.test(line)) ?? "exit " + output.code
    }`;
  return /Created device \S*device:GPU:\d+/.test(output.text)
    ? undefined
    : "TensorFlow sees no GPU (CUDA 12/cuDNN libraries or driver missing?)";
}

function runNode(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number; text: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["-e", script], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout.on("data", (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (text += chunk.toString()));
    child.on("error", (error) => resolve({ code: -1, text: error.message }));
    child.on("close", (code) => resolve({ code: code ?? -1, text }));
  });
}
