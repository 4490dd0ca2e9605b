import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  BackendUnavailableError,
  selectBackend,
  tensorFlowSettings,
  type BackendProbe,
  type LoadedTf,
  type NativeBackendName,
  type Tf,
} from "../science/backend/select.ts";
import { BackendSetupError, expectedBindingPath, flavour, setupBackend } from "../science/backend/setup.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const selectModule = path.join(repoRoot, "science/backend/select.ts");

/** A probe with scripted availability that records what was loaded. */
function fakeProbe(unavailable: Partial<Record<NativeBackendName, string>>) {
  const loads: string[] = [];
  const loaded = (label: string): LoadedTf => ({
    tf: { label } as unknown as Tf,
    tfVersion: `tf-${label}`,
    tfjsVersion: "4.22.0",
  });
  const probe: BackendProbe = {
    nativeUnavailable: async (name) => unavailable[name],
    loadNative: async (name) => {
      loads.push(name);
      return loaded(name);
    },
    loadPureJs: async () => {
      loads.push("cpu");
      return loaded("cpu");
    },
  };
  return { probe, loads };
}

describe("selectBackend with fake availability", () => {
  const env = () => ({}) as NodeJS.ProcessEnv;

  it("auto prefers the GPU backend over the native CPU one", async () => {
    const { probe, loads } = fakeProbe({});
    const info = await selectBackend("auto", { probe, env: env() });
    expect(info.name).toBe("tensorflow-gpu");
    expect(info.tfVersion).toBe("tf-tensorflow-gpu");
    expect(loads).toEqual(["tensorflow-gpu"]);
  });

  it("auto takes native CPU TensorFlow when no GPU is usable", async () => {
    const { probe, loads } = fakeProbe({ "tensorflow-gpu": "no GPU" });
    const info = await selectBackend("auto", { probe, env: env() });
    expect(info.name).toBe("tensorflow");
    expect(loads).toEqual(["tensorflow"]);
  });

  it("auto refuses to fall back to the pure-JS backend and says how to fix it, in one line", async () => {
    const { probe, loads } = fakeProbe({ "tensorflow-gpu": "no GPU", tensorflow: "the native binding is not built" });
    const failure = selectBackend("auto", { probe, env: env() });
    await expect(failure).rejects.toBeInstanceOf(BackendUnavailableError);
    const message = await failure.catch((error: Error) => error.message);
    expect(message).toContain("the native binding is not built");
    expect(message).toContain("npx pipeline setup-backend");
    expect(message).not.toContain("\n");
    expect(loads).toEqual([]);
  });

  it("uses the pure-JS cpu backend when asked for by name, even if native ones exist", async () => {
    const { probe, loads } = fakeProbe({});
    const info = await selectBackend("cpu", { probe, env: env() });
    expect(info.name).toBe("cpu");
    expect(info.threads).toEqual({ intraOp: 1, interOp: 1 });
    expect(loads).toEqual(["cpu"]);
  });

  it("an explicit native choice that is unavailable fails with its reason instead of substituting another", async () => {
    const { probe, loads } = fakeProbe({ "tensorflow-gpu": "TensorFlow sees no GPU" });
    await expect(selectBackend("tensorflow-gpu", { probe, env: env() })).rejects.toThrow(
      /TensorFlow sees no GPU.*setup-backend --gpu/,
    );
    expect(loads).toEqual([]);
  });

  it("a binding that fails to load becomes a one-line error", async () => {
    const { probe } = fakeProbe({});
    probe.loadNative = async () => {
      throw new Error("libtensorflow_cc.so.2: cannot open shared object file\n    at Module._extensions..node");
    };
    const message = await selectBackend("tensorflow", { probe, env: env() }).catch((error: Error) => error.message);
    expect(message).toMatch(
      /^backend 'tensorflow' failed to load: libtensorflow_cc\.so\.2: cannot open shared object file; run/,
    );
    expect(message).not.toContain("\n");
  });

  it("rejects an unknown backend name without probing anything", async () => {
    const { probe, loads } = fakeProbe({});
    await expect(selectBackend("webgl", { probe, env: env() })).rejects.toThrow(
      /unknown backend 'webgl'.*auto, tensorflow-gpu, tensorflow, cpu/,
    );
    expect(loads).toEqual([]);
  });

  it("records thread counts and determinism in BackendInfo and in the environment TensorFlow will read", async () => {
    const { probe } = fakeProbe({});
    const processEnv = env();
    const info = await selectBackend("tensorflow", { probe, env: processEnv, intraOpThreads: 3 });
    expect(info.threads).toEqual({ intraOp: 3, interOp: 1 });
    expect(info.deterministic).toBe(true);
    expect(processEnv).toMatchObject({
      TF_NUM_INTRAOP_THREADS: "3",
      TF_NUM_INTEROP_THREADS: "1",
      TF_DETERMINISTIC_OPS: "1",
      TF_CPP_MIN_LOG_LEVEL: "2",
    });
    expect(info.env).toMatchObject({
      TF_NUM_INTRAOP_THREADS: "3",
      TF_DETERMINISTIC_OPS: "1",
      TF_ENABLE_ONEDNN_OPTS: "1",
    });
  });
});

describe("tensorFlowSettings", () => {
  it("defaults to all CPUs intra-op and one inter-op thread, without touching the given environment", () => {
    const env: NodeJS.ProcessEnv = {};
    const settings = tensorFlowSettings(env);
    expect(settings.threads).toEqual({ intraOp: availableParallelism(), interOp: 1 });
    expect(settings.env).toMatchObject({
      TF_NUM_INTRAOP_THREADS: String(availableParallelism()),
      TF_DETERMINISTIC_OPS: "1",
    });
    expect(env).toEqual({});
  });

  it("keeps values the user already set, and reports determinism switched off honestly", () => {
    const settings = tensorFlowSettings({
      TF_NUM_INTRAOP_THREADS: "5",
      TF_CPP_MIN_LOG_LEVEL: "0",
      TF_DETERMINISTIC_OPS: "0",
    });
    expect(settings.threads.intraOp).toBe(5);
    expect(settings.deterministic).toBe(false);
    expect(settings.env["TF_CPP_MIN_LOG_LEVEL"]).toBe("0");
  });

  it("explicit thread options override the environment", () => {
    const settings = tensorFlowSettings(
      { TF_NUM_INTRAOP_THREADS: "5", TF_NUM_INTEROP_THREADS: "4" },
      { intraOpThreads: 2, interOpThreads: 2 },
    );
    expect(settings.threads).toEqual({ intraOp: 2, interOp: 2 });
    expect(settings.env).toMatchObject({ TF_NUM_INTRAOP_THREADS: "2", TF_NUM_INTEROP_THREADS: "2" });
  });

  it("rejects thread counts that are not positive integers", () => {
    expect(() => tensorFlowSettings({ TF_NUM_INTRAOP_THREADS: "two" })).toThrow(BackendUnavailableError);
    expect(() => tensorFlowSettings({}, { interOpThreads: 0 })).toThrow(
      /TF_NUM_INTEROP_THREADS must be a positive integer/,
    );
  });
});

describe("setupBackend (no build)", () => {
  it("maps the GPU flag to the CUDA wheel and the tfjs-node-gpu package", () => {
    expect(flavour(true)).toEqual({ packageName: "@tensorflow/tfjs-node-gpu", pipSpec: "tensorflow==2.21.0" });
    expect(flavour(false)).toEqual({ packageName: "@tensorflow/tfjs-node", pipSpec: "tensorflow-cpu==2.21.0" });
  });

  it("reports a missing wheel in one line before touching anything", async () => {
    const failure = setupBackend({ fromWheel: "/nonexistent/tensorflow.whl", force: true, log: () => {} });
    await expect(failure).rejects.toBeInstanceOf(BackendSetupError);
    await expect(failure).rejects.toThrow(/^wheel not found: \/nonexistent\/tensorflow\.whl$/);
  });

  const gpuPackageInstalled = canResolve("@tensorflow/tfjs-node-gpu/package.json");
  it.skipIf(gpuPackageInstalled)("--gpu without the tfjs-node-gpu package says how to install it", async () => {
    await expect(setupBackend({ gpu: true, log: () => {} })).rejects.toThrow(
      /tfjs-node-gpu is not installed.*--ignore-scripts/,
    );
  });
});

const tfjsNodeDir = path.dirname(createRequire(import.meta.url).resolve("@tensorflow/tfjs-node/package.json"));
const bindingBuilt = existsSync(expectedBindingPath(tfjsNodeDir));
if (!bindingBuilt)
  console.warn("skipping native backend tests: tfjs-node binding not built (run `npx pipeline setup-backend`)");

describe.skipIf(!bindingBuilt)("native TensorFlow backend (needs `npx pipeline setup-backend`)", () => {
  it("setup-backend recognises the existing build and re-runs quickly", async () => {
    const lines: string[] = [];
    const result = await setupBackend({ log: (line) => lines.push(line) });
    expect(result.alreadyBuilt).toBe(true);
    expect(result.tfVersion).toMatch(/^2\.\d+\.\d+/);
    expect(lines.join("\n")).toContain("already built");
  });

  it("loads as 'tensorflow' and computes a conv2d that matches a direct float64 computation", async () => {
    const info = await selectBackend("tensorflow");
    const { tf } = info;
    expect(tf.getBackend()).toBe("tensorflow");
    expect(info.tfVersion).toMatch(/^2\.\d+\.\d+/);

    const [h, w, cin, cout] = [5, 6, 3, 2];
    const input = Array.from({ length: h * w * cin }, (_, i) => Math.sin(i * 0.7));
    const kernel = Array.from({ length: 3 * 3 * cin * cout }, (_, i) => Math.cos(i * 1.3));
    const output = tf
      .conv2d(tf.tensor4d(input, [1, h, w, cin]), tf.tensor4d(kernel, [3, 3, cin, cout]), 1, "same")
      .dataSync();

    const expected: number[] = [];
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let o = 0; o < cout; o++) {
          let sum = 0;
          for (let dy = -1; dy <= 1; dy++)
            for (let dx = -1; dx <= 1; dx++)
              for (let c = 0; c < cin; c++) {
                const [yy, xx] = [y + dy, x + dx];
                if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                sum += input[(yy * w + xx) * cin + c]! * kernel[(((dy + 1) * 3 + (dx + 1)) * cin + c) * cout + o]!;
              }
          expected.push(sum);
        }
    expect(output.length).toBe(expected.length);
    expected.forEach((value, i) => expect(output[i]).toBeCloseTo(value, 4));

    const otherThreads = info.threads.intraOp + 1;
    await expect(selectBackend("tensorflow", { intraOpThreads: otherThreads })).rejects.toThrow(
      /already initialised in this process/,
    );
    expect(process.env["TF_NUM_INTRAOP_THREADS"]).toBe(String(info.threads.intraOp));
  });

  it.skipIf(!existsSync("/proc/self/task"))("TF_NUM_INTRAOP_THREADS sizes TensorFlow's thread pool", async () => {
    const countThreads = `
      const info = await selectBackend("tensorflow");
      info.tf.conv2d(info.tf.ones([4, 16, 16, 4]), info.tf.ones([3, 3, 4, 4]), 1, "same").dataSync();
      console.log(readdirSync("/proc/self/task").length);`;
    const one = Number(await runWithSelect(countThreads, { TF_NUM_INTRAOP_THREADS: "1" }));
    const four = Number(await runWithSelect(countThreads, { TF_NUM_INTRAOP_THREADS: "4" }));
    expect(four - one).toBe(3);
  });

  it("a conv net forward+backward is bit-identical in two fresh processes", async () => {
    const [first, second] = [await runWithSelect(CONV_NET_HASH, {}), await runWithSelect(CONV_NET_HASH, {})];
    const parsed = JSON.parse(first) as { loss: number; hash: string };
    expect(Number.isFinite(parsed.loss) && parsed.loss > 0).toBe(true);
    expect(second).toBe(first);
  });
});

/**
 * Conv -> batch norm -> pool -> residual conv -> dense -> softmax cross-entropy; prints loss and a hash of the loss and
 * all gradients.
 */
const CONV_NET_HASH = `
  const { tf } = await selectBackend("tensorflow");
  const x = tf.randomNormal([16, 12, 12, 1], 0, 1, "float32", 1);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 10), "int32"), 10);
  const variable = (shape, seed) => tf.variable(tf.randomNormal(shape, 0, 0.1, "float32", seed));
  const [w1, w2, w3] = [variable([3, 3, 1, 8], 2), variable([3, 3, 8, 8], 3), variable([8, 10], 4)];
  const [gamma, beta] = [tf.variable(tf.ones([8])), tf.variable(tf.zeros([8]))];
  const { value, grads } = tf.variableGrads(() => {
    let h = tf.conv2d(x, w1, 1, "same");
    const { mean, variance } = tf.moments(h, [0, 1, 2]);
    h = tf.maxPool(tf.batchNorm(h, mean, variance, beta, gamma, 1e-5).relu(), 2, 2, "same");
    h = h.add(tf.conv2d(h, w2, 1, "same").relu()).mean([1, 2]);
    return tf.losses.softmaxCrossEntropy(labels, h.matMul(w3));
  });
  const hash = createHash("sha256").update(Buffer.from(value.dataSync().buffer));
  for (const name of Object.keys(grads).sort()) hash.update(Buffer.from(grads[name].dataSync().buffer));
  console.log(JSON.stringify({ loss: value.dataSync()[0], hash: hash.digest("hex") }));`;

/**
 * Runs an ES module snippet in a fresh node (with tsx) that has selectBackend, readdirSync and createHash in scope;
 * returns its last stdout line.
 */
function runWithSelect(body: string, extraEnv: Record<string, string>): Promise<string> {
  const script = `
    import { selectBackend } from ${JSON.stringify(selectModule)};
    import { readdirSync } from "node:fs";
    import { createHash } from "node:crypto";
    ${body}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: repoRoot,
      env: { ...process.env, TF_NUM_INTRAOP_THREADS: "2", TF_NUM_INTEROP_THREADS: "1", ...extraEnv },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let [stdout, stderr] = ["", ""];
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("close", (code) =>
      code === 0
        ? resolve(stdout.trim().split("\n").at(-1) ?? "")
        : reject(new Error(`child exited ${code}: ${stderr}`)),
    );
  });
}

function canResolve(specifier: string): boolean {
  try {
    createRequire(import.meta.url).resolve(specifier);
    return true;
  } catch {
    return false;
  }
}
