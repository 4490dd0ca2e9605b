/**
 * The paper's pipeline end to end on a tiny slice of real MNIST with the native backend: every stage runs, the
 * aggregate agrees with a slow recomputation from the probe table, and a second run is entirely cached.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ArtifactStore } from "../cache/store.ts";
import { main } from "../pipeline/cli.ts";
import { readParquet } from "../pipeline/parquet.ts";
import { humanDuration } from "../pipeline/progress.ts";
import { measuredSecondsPerImage } from "../science/throughput.ts";
import { paperPipeline } from "../stages/index.ts";
import { capture } from "./fixtures/capture.ts";

const dataDir = resolve(import.meta.dirname, "../../shared/datasets");
const haveData = existsSync(join(dataDir, "MNIST/raw/train-images-idx3-ubyte.gz"));
const cacheDir = mkdtempSync(join(tmpdir(), "science-"));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

const TINY = [
  "--preset",
  "smoke",
  "--data-dir",
  dataDir,
  "--cache-dir",
  cacheDir,
  "--backend",
  "tensorflow",
  "--offline",
  "--set",
  "mnist.trainSubset=256",
  "--set",
  "mnist.depths=[1,2]",
  "--set",
  "mnist.probeImages=64",
  "--set",
  "mnist.batchSize=64",
];

const run = async (...args: string[]) => {
  const out = capture();
  const err = capture();
  const code = await main(paperPipeline, args, { out: out.stream, err: err.stream });
  return { code, out: out.text(), err: err.text() };
};

describe.skipIf(!haveData)(`paper pipeline on real MNIST (needs ${dataDir})`, () => {
  it("runs every stage, aggregates what the probe measured, and reruns nothing", async () => {
    const first = await run("run", "all", ...TINY, "--json");
    expect(first.code, first.err).toBe(0);
    const nodes = JSON.parse(first.out).nodes as Array<{ id: string; status: string }>;
    expect(nodes.map((n) => n.id)).toEqual([
      "download[mnist]",
      "preprocess[mnist]",
      "train[mnist,L=1,seed=0]",
      "train[mnist,L=2,seed=0]",
      "probe[mnist,L=1,seed=0]",
      "probe[mnist,L=2,seed=0]",
      "aggregate[mnist]",
      "fit[mnist]",
      "stop-rule[mnist,eps=0.1]",
      "report[mnist,eps=0.1]",
    ]);
    expect(nodes.every((n) => n.status === "ran")).toBe(true);

    const store = await ArtifactStore.open(cacheDir);
    const { manifests } = await store.list();
    const byId = (id: string) => manifests.find((m) => m.nodeId === id)!;
    const table = (id: string, artifact: string) =>
      readParquet(join(store.artifactDir(byId(id).key), byId(id).artifacts[artifact]!.file));

    expect((byId("train[mnist,L=2,seed=0]").runtime.backend as { name: string }).name).toBe("tensorflow");
    const probe = await table("probe[mnist,L=2,seed=0]", "perturbations");
    expect(probe).toHaveLength(3 * 2 * 64);
    // Slow reference: d per section = sum over blocks of the mean over images of abs (and of scaled).
    const sections = await table("aggregate[mnist]", "sections");
    for (const section of [0, 1, 2]) {
      let d = 0;
      let dScaled = 0;
      for (const block of [0, 1]) {
        const rows = probe.filter((r) => r.section === section && r.block === block);
        expect(rows).toHaveLength(64);
        d += rows.reduce((s, r) => s + (r.abs as number), 0) / rows.length;
        dScaled += rows.reduce((s, r) => s + (r.scaled as number), 0) / rows.length;
      }
      const row = sections.find((r) => r.depth === 2 && r.section === section)!;
      expect(row.distance as number).toBeCloseTo(d, 10);
      expect(row.scaledDistance as number).toBeCloseTo(dScaled, 10);
      expect(row.meanScaledPerturbation as number).toBeCloseTo(dScaled / 2, 10);
    }
    const epochs = await table("train[mnist,L=2,seed=0]", "epochs");
    expect(sections.find((r) => r.depth === 2)!.testError).toBe(epochs.at(-1)!.testError);
    const rules = await table("stop-rule[mnist,eps=0.1]", "rules");
    const overall = rules.filter((r) => r.seed === null && (r.section as number) >= 0);
    expect(overall.map((r) => r.paperScaledDistance)).toEqual([4.11, 3.12, 4.58]);
    for (const r of overall) expect(r.predictedDepth).toBe(Math.ceil((r.scaledDistance as number) / 0.1 - 1e-9));

    // The run ends with what it found, read from the artifacts just written.
    const fits = await table("fit[mnist]", "fits");
    const exponents = [0, 1, 2].map((section) => {
      const f = fits.find((r) => r.seed === null && r.section === section)!;
      const ci =
        f.slopeCiLow === null
          ? ""
          : ` [${(f.slopeCiLow as number).toFixed(2)}, ${(f.slopeCiHigh as number).toFixed(2)}]`;
      return `${(f.slope as number).toFixed(2)}${ci}`;
    });
    const reportPath = join(store.artifactDir(byId("report[mnist,eps=0.1]").key), "report.html");
    const errorOf = (L: number) => sections.find((r) => r.depth === L && r.section === -1)!.testError as number;
    const indent = " ".repeat(2 + "report[mnist,eps=0.1]".length + 2);
    const expectedResults = [
      "results:",
      `  report[mnist,eps=0.1]  test error ${(100 * errorOf(1)).toFixed(2)}% (L=1), ${(100 * errorOf(2)).toFixed(2)}% (L=2)`,
      `${indent}exponent per section (95% CI): ${exponents.join(", ")}; hypothesis -1`,
      `${indent}blocks per section for eps 0.1: ${overall
        .filter((r) => r.estimator === "saturated")
        .map((r) => r.predictedDepth ?? "n/a")
        .join(" / ")} (paper: 42 / 32 / 46)`,
      `${indent}report: ${reportPath}`,
    ];
    const resultsOf = (stderr: string) => stderr.slice(stderr.indexOf("results:")).trimEnd().split("\n");
    expect(resultsOf(first.err)).toEqual(expectedResults);

    const second = await run("run", "all", ...TINY, "--json");
    expect(second.code).toBe(0);
    expect((JSON.parse(second.out).nodes as Array<{ status: string }>).every((n) => n.status === "cached")).toBe(true);
    expect(resultsOf(second.err)).toEqual(expectedResults);
    // A target that nothing builds on is summarized node by node: each training's final test error.
    const trains = await run("run", "train", ...TINY);
    expect(resultsOf(trains.err)).toEqual([
      "results:",
      `  train[mnist,L=1,seed=0]  test error ${(100 * errorOf(1)).toFixed(2)}% after 1 epoch`,
      `  train[mnist,L=2,seed=0]  test error ${(100 * (epochs.at(-1)!.testError as number)).toFixed(2)}% after 1 epoch`,
    ]);

    // A dry run of one more depth names its work and time from the measured throughput.
    const dry = await run("run", "all", ...TINY, "--set", "mnist.depths=[1,2,3]", "--dry-run");
    expect(dry.code, dry.err).toBe(0);
    const trainSeconds = 256 * measuredSecondsPerImage("mnist", 3)!;
    const probeSeconds = 64 * measuredSecondsPerImage("mnist", 3)!;
    expect(dry.err).toContain(
      `train[mnist,L=3,seed=0]   never run · 1 epoch x 256 images, batch 64, ~${humanDuration(trainSeconds * 1000)}\n`,
    );
    expect(dry.err).toContain(`· 64 test images, ~${humanDuration(probeSeconds * 1000)}\n`);
    expect(dry.err).toContain(
      `estimated: ${humanDuration((trainSeconds + probeSeconds) * 1000)} for 2 nodes one at a time, ` +
        "from measured throughput (+ 4 quick nodes without an estimate)\n",
    );
  }, 300_000);

  it("a training node killed with SIGKILL after an epoch resumes from its checkpoint and ends bit-identical", async () => {
    const killedCache = mkdtempSync(join(tmpdir(), "killed-"));
    const straightCache = mkdtempSync(join(tmpdir(), "straight-"));
    try {
      const args = (cache: string) => [
        "run",
        "train[mnist,L=1,seed=0]",
        "--preset",
        "smoke",
        "--data-dir",
        dataDir,
        "--cache-dir",
        cache,
        "--backend",
        "tensorflow",
        "--offline",
        "--set",
        // 1,024 images: each epoch takes a second or more, so the kill lands in epoch 2 or 3, never after the end.
        "mnist.trainSubset=1024",
        "--set",
        "mnist.epochs=3",
        "--set",
        "mnist.depths=[1]",
      ];
      const child = spawn(process.execPath, ["bin/pipeline.mjs", ...args(killedCache)], {
        cwd: resolve(import.meta.dirname, ".."),
        stdio: "ignore",
      });
      const scratch = join(killedCache, "scratch");
      const checkpointed = () =>
        existsSync(scratch) && readdirSync(scratch).some((k) => existsSync(join(scratch, k, "checkpoint.json")));
      const exited = new Promise((r) => child.on("close", r));
      let running = true;
      void exited.then(() => (running = false));
      // The moment of the kill: as soon as epoch 1's checkpoint (its commit point, checkpoint.json) exists.
      for (let i = 0; i < 12_000 && running && !checkpointed(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(checkpointed(), "no checkpoint appeared before the run ended").toBe(true);
      child.kill("SIGKILL");
      await exited;
      const store0 = await ArtifactStore.open(killedCache);
      expect(
        (await store0.list()).manifests.some((m) => m.stage === "train"),
        "the run finished before the kill",
      ).toBe(false);

      const resumed = await run(...args(killedCache), "--json");
      expect(resumed.code, resumed.err).toBe(0);
      expect(resumed.err).toMatch(/note +train\[mnist,L=1,seed=0\]: resumed from epoch [12] \(test error /);
      expect(resumed.err).toContain("train[mnist,L=1,seed=0]: epoch 3/3: test error ");
      const straight = await run(...args(straightCache), "--json");
      expect(straight.code, straight.err).toBe(0);
      const node = (out: string) =>
        (
          JSON.parse(out).nodes as Array<{ id: string; key: string; artifacts: Record<string, { sha256: string }> }>
        ).find((n) => n.id.startsWith("train"))!;
      expect(node(resumed.out).key).toBe(node(straight.out).key);
      expect(node(resumed.out).artifacts["weights.bin"]!.sha256).toBe(
        node(straight.out).artifacts["weights.bin"]!.sha256,
      );
      expect(node(resumed.out).artifacts.epochs!.sha256).toBe(node(straight.out).artifacts.epochs!.sha256);
      const store = await ArtifactStore.open(killedCache);
      const manifest = (await store.list()).manifests.find((m) => m.stage === "train")!;
      expect(manifest.runtime.resumedEpochs as number).toBeGreaterThanOrEqual(1);
    } finally {
      rmSync(killedCache, { recursive: true, force: true });
      rmSync(straightCache, { recursive: true, force: true });
    }
  }, 300_000);
});
