/**
 * Quiet by default: TensorFlow's own C++ log lines stay off stderr unless `--verbose` (or PIPELINE_VERBOSE=1), and
 * the settings that results depend on bitwise are stated once, in the train stage's backend line. The two lines no
 * environment variable filters are hidden by the stderr gate that setup-backend builds.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { nativeProbe, tensorFlowSettings, type BackendInfo } from "../science/backend/select.ts";
import { STDERR_GATE_PATH } from "../science/backend/setup.ts";
import { describeBackend } from "../stages/services.ts";

const repoRoot = resolve(import.meta.dirname, "..");
const dataDir = resolve(repoRoot, "../shared/datasets");
const haveData = existsSync(join(dataDir, "MNIST/raw/train-images-idx3-ubyte.gz"));
const nativeMissing = await nativeProbe.nativeUnavailable("tensorflow");
const gateBuilt = existsSync(STDERR_GATE_PATH);
const run = promisify(execFile);

/** A TensorFlow C++ log line: severity letter, MMDD date, time, thread, then `file.cc:LINE]`. */
const TF_LOG_LINE = /^[IWEF]\d{4} [\d:.]+ +\d+ (\S+\.cc):\d+\]/;
/**
 * The two lines TensorFlow 2.21 writes through absl logging while its library loads, which TF_CPP_MIN_LOG_LEVEL does
 * not filter (not even at 3); TF_ENABLE_ONEDNN_OPTS=0 would remove them but changes results bitwise, so the stderr
 * gate hides them instead (when built).
 */
const UNFILTERABLE = [/^WARNING: All log messages before absl::InitializeLog\(\) is called/, /port\.cc:\d+\] oneDNN/];

describe("TensorFlow logging settings", () => {
  it("hides C++ INFO/WARNING logs by default and shows them when verbose, whatever the environment says", () => {
    expect(tensorFlowSettings({}).env["TF_CPP_MIN_LOG_LEVEL"]).toBe("2");
    expect(tensorFlowSettings({ TF_CPP_MIN_LOG_LEVEL: "2" }, { verbose: true }).env["TF_CPP_MIN_LOG_LEVEL"]).toBe("0");
  });

  it("the backend line names the determinism and oneDNN settings", () => {
    const info = (env: Record<string, string>, deterministic: boolean) =>
      ({
        name: "tensorflow",
        tfVersion: "2.21.0",
        tfjsVersion: "4.22.0",
        threads: { intraOp: 2, interOp: 1 },
        deterministic,
        env,
      }) as unknown as BackendInfo;
    expect(describeBackend(info({ TF_ENABLE_ONEDNN_OPTS: "1" }, true))).toBe(
      "backend tensorflow (TensorFlow 2.21.0, 2 intra-op / 1 inter-op threads, deterministic ops, oneDNN on)",
    );
    expect(describeBackend(info({ TF_ENABLE_ONEDNN_OPTS: "0" }, false))).toBe(
      "backend tensorflow (TensorFlow 2.21.0, 2 intra-op / 1 inter-op threads, oneDNN off)",
    );
  });
});

const tensorFlowLines = (stderr: string) =>
  stderr.split("\n").filter((line) => TF_LOG_LINE.test(line) || UNFILTERABLE.some((known) => known.test(line)));

const gateSkipReason =
  nativeMissing !== undefined
    ? `native backend unavailable: ${nativeMissing}`
    : gateBuilt
      ? undefined
      : "stderr gate not built (npx pipeline setup-backend)";

describe.skipIf(gateSkipReason !== undefined)(`loading TensorFlow (${gateSkipReason ?? "stderr gate built"})`, () => {
  /** Loads the native backend in a fresh process as the train stage does, then writes a line to stderr. */
  async function loadInChild(verbose: boolean): Promise<string> {
    const script = `
      import { selectBackend } from ${JSON.stringify(join(repoRoot, "science/backend/select.ts"))};
      const info = await selectBackend("tensorflow", { verbose: ${verbose} });
      info.tf.add(info.tf.ones([2]), info.tf.ones([2])).dataSync();
      process.stderr.write("written after loading\\n");`;
    const { TF_CPP_MIN_LOG_LEVEL: _level, ...env } = process.env;
    const { stderr } = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: repoRoot,
      env,
    });
    return stderr;
  }

  it("hides the two unfilterable lines without verbose, and stderr works again afterwards", async () => {
    const stderr = await loadInChild(false);
    expect(tensorFlowLines(stderr)).toEqual([]);
    expect(stderr).toContain("written after loading\n");
  }, 60_000);

  it("shows them with verbose", async () => {
    const stderr = await loadInChild(true);
    for (const known of UNFILTERABLE) expect(stderr.split("\n").some((line) => known.test(line))).toBe(true);
    expect(stderr).toContain("written after loading\n");
  }, 60_000);
});

const skipReason = !haveData
  ? `needs the MNIST files in ${dataDir}`
  : nativeMissing !== undefined
    ? `native backend unavailable: ${nativeMissing}`
    : undefined;

describe.skipIf(skipReason !== undefined)(`a real training process (${skipReason ?? "native backend built"})`, () => {
  const cacheDirs: string[] = [];
  afterAll(() => cacheDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

  /** Trains a 128-image, L=1, one-epoch node in a fresh cache and returns what the process wrote on stderr. */
  async function trainTinyNode(extraArgs: string[]): Promise<string> {
    const cacheDir = mkdtempSync(join(tmpdir(), "quiet-"));
    cacheDirs.push(cacheDir);
    const { TF_CPP_MIN_LOG_LEVEL: _level, PIPELINE_VERBOSE: _verbose, ...env } = process.env;
    const args = [
      ...["run", "train[mnist,L=1,seed=0]", "--preset", "smoke", "--set", "mnist.trainSubset=128"],
      ...["--data-dir", dataDir, "--cache-dir", cacheDir, "--backend", "tensorflow", "--offline", ...extraArgs],
    ];
    const { stderr } = await run(process.execPath, [join(repoRoot, "bin/pipeline.mjs"), ...args], {
      cwd: repoRoot,
      env: { ...env, PIPELINE_FROM_SOURCES: "1" },
    });
    expect(stderr).toMatch(/done +train\[mnist,L=1,seed=0\]/);
    return stderr;
  }

  it("by default prints no TensorFlow log line (the two absl ones only without the gate), states settings once", async () => {
    const stderr = await trainTinyNode([]);
    const leaks = tensorFlowLines(stderr).filter(
      (line) => gateBuilt || !UNFILTERABLE.some((known) => known.test(line)),
    );
    expect(leaks).toEqual([]);
    const backendLines = stderr.split("\n").filter((line) => line.includes(": backend tensorflow ("));
    expect(backendLines).toHaveLength(1);
    expect(backendLines[0]).toMatch(/threads, deterministic ops, oneDNN on\)$/);
  }, 120_000);

  it("with --verbose prints TensorFlow's filtered INFO lines too", async () => {
    const stderr = await trainTinyNode(["--verbose"]);
    // x86 builds log at INFO which of the CPU's instructions they were not compiled for (cpu_feature_guard.cc).
    const filtered = tensorFlowLines(stderr).filter((line) => !UNFILTERABLE.some((known) => known.test(line)));
    expect(filtered.length).toBeGreaterThan(0);
  }, 120_000);
});
