import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { estimates, gpuAssumptions, probeRows, summaryTable, trainingRows } from "../bench.ts";
import { repoRoot } from "../lib/measure.ts";

const summary = (median: number, min = median, max = median) => ({ median, min, max, n: 3 });

describe("npm run bench's summary", () => {
  it("reports ours / PyTorch per shape and L against the 0.8 target", () => {
    const rows = trainingRows({
      throughput: [
        {
          shape: "mnist",
          blocks: 1,
          oursImgPerSec: summary(400),
          torchImgPerSec: summary(500),
          ratio: summary(0.8, 0.7, 0.9),
        },
        { shape: "cifar", blocks: 4, oursImgPerSec: summary(100), torchImgPerSec: summary(200), ratio: summary(0.5) },
        { shape: "cifar", blocks: 16, oursImgPerSec: summary(20) },
      ],
    });
    expect(rows.map((r) => r.met)).toEqual([true, false, undefined]);
    expect(rows[0]!.value).toBe("400 / 500 = 0.80x (0.70..0.90)");
    expect(rows[2]!.value).toContain("PyTorch not run");
    expect(summaryTable(rows)).toContain(
      "| training | train img/s, cifar L=4: ours / PyTorch | 100 / 200 = 0.50x (0.50..0.50) | >= 0.8 (NOT met) |",
    );
  });

  it("checks the probe ratio against 1.10 and memory for flatness in N", () => {
    const rows = probeRows({
      overhead: [
        {
          blocks: 4,
          images: 1000,
          probeOverInference: summary(1.05, 1.01, 1.2),
          probeWithParquetOverInference: summary(1.3),
        },
      ],
      memory: {
        rows: [
          { images: 1000, peakTensorMiB: 45, peakLiveHeapMiB: 30, peakRssMiB: 700, baselineRssMiB: 690 },
          { images: 10000, peakTensorMiB: 45, peakLiveHeapMiB: 60, peakRssMiB: 800, baselineRssMiB: 690 },
        ],
        peakTensorGrowthMiB: 0,
        peakLiveHeapGrowthMiB: 30,
      },
    });
    expect(rows.filter((r) => r.target !== undefined).map((r) => [r.metric.split(",")[0], r.met])).toEqual([
      ["probe / inference", true],
      ["peak tensor memory", true],
      ["peak live JS heap (after GC)", false], // grew by 30 MiB
    ]);
  });

  it("estimates the sweep only from two or more depths per shape, and fits ops per step from the census", () => {
    const point = (shape: "mnist" | "cifar", blocks: number, ips: number) => ({
      shape,
      blocks,
      oursImgPerSec: summary(ips),
    });
    expect(estimates({ throughput: [point("mnist", 1, 100)] }).skipped).toMatch(/two or more depths/);
    const ops = (blocks: number) => 100 + 50 * blocks;
    const census = (blocks: number) => ({
      shape: "mnist",
      blocks,
      census: { opsPerStep: ops(blocks), javascriptMs: ops(blocks) * 0.02 },
    });
    const training = {
      throughput: [point("mnist", 1, 500), point("mnist", 4, 200), point("cifar", 1, 400), point("cifar", 4, 150)],
      // Older results also hold prototype variants of the step: only the current step counts.
      breakdown: {
        ours: [
          census(1),
          { ...census(4), variant: "current" },
          { ...census(16), variant: "handWrittenBnRelu", census: { opsPerStep: 1, javascriptMs: 1 } },
        ],
      },
    };
    const a = gpuAssumptions(training)!;
    expect(a.opsPerStep.intercept).toBeCloseTo(100, 9);
    expect(a.opsPerStep.slope).toBeCloseTo(50, 9);
    expect(a.secondsPerOp).toBeCloseTo(20e-6 + 10e-6, 12); // 0.02 ms of JS per op + 10 us launch
    const e = estimates(training);
    expect(e.cpu!.runs).toHaveLength(76);
    expect(e.gpu!.totalHours).toBeGreaterThan(0);
  });

  const scratch = mkdtempSync(path.join(tmpdir(), "bench-summary-"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it("runs a benchmark as a child process and summarises what it wrote", () => {
    const run = spawnSync(
      process.execPath,
      ["--import", "tsx", "benchmarks/bench.ts", "--quick", "--only", "io", "--results-dir", scratch],
      {
        cwd: repoRoot,
        encoding: "utf8",
        timeout: 240_000,
      },
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain("=== summary (quick run");
    const written = JSON.parse(readFileSync(path.join(scratch, "bench-quick.json"), "utf8"));
    expect(Object.keys(written.runs)).toEqual(["io"]);
    expect(written.summary.length).toBeGreaterThan(3);
    expect(written.summary.every((r: { area: string }) => r.area === "io")).toBe(true);
    const unknown = spawnSync(process.execPath, ["--import", "tsx", "benchmarks/bench.ts", "--only", "nope"], {
      cwd: repoRoot,
      encoding: "utf8",
    });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr.trim()).toBe("bench: unknown benchmark 'nope' (planning, training, probe, io)");
  }, 300_000);
});
