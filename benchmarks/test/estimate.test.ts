import * as tfjs from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { estimateCpuSweep, estimateGpuSweep, forwardMacsPerImage, presetRuns } from "../lib/estimate.ts";
import { linearFit, throughputPoints } from "../../science/throughput.ts";
import { createResNet } from "../../science/resnet.ts";
import { DATASETS } from "../../science/data/datasets.ts";

/** The paper's depths: L = 2, 4, ..., 70, then 80, 90, 100. */
const PAPER_DEPTHS = [...Array.from({ length: 35 }, (_, i) => 2 * (i + 1)), 80, 90, 100];

describe("the sweep estimate", () => {
  it("lists every run of the paper preset with its epochs and batch size", () => {
    const runs = presetRuns("paper");
    expect(runs.map((r) => r.L)).toEqual([...PAPER_DEPTHS, ...PAPER_DEPTHS]);
    expect(runs).toHaveLength(2 * PAPER_DEPTHS.length);
    expect(runs.find((r) => r.dataset === "mnist" && r.L === 100)).toEqual({
      dataset: "mnist",
      L: 100,
      epochs: 20,
      trainImages: 60_000,
      testImages: 10_000,
      batchSize: 64,
    });
    expect(runs.find((r) => r.dataset === "cifar10" && r.L === 2)).toMatchObject({
      epochs: 160,
      trainImages: 50_000,
      batchSize: 256,
    });
  });

  it("lists a CPU preset's runs as the pipeline would train them, and reads the training benchmark's shapes", () => {
    expect(presetRuns("mnist-cpu")).toEqual(
      [1, 2, 4, 8, 16, 32].map((L) => ({
        dataset: "mnist",
        L,
        epochs: 3,
        trainImages: 60_000,
        testImages: 10_000,
        batchSize: 128,
      })),
    );
    expect(presetRuns("smoke").map((r) => r.trainImages)).toEqual([10_000, 10_000, 10_000, 10_000]);
    const median = (x: number) => ({ median: x });
    expect(throughputPoints([{ shape: "cifar", blocks: 4, oursImgPerSec: median(250) }])).toEqual([
      { dataset: "cifar10", L: 4, trainImgPerSec: 250 },
    ]);
    expect(() => throughputPoints([{ shape: "imagenet", blocks: 1, oursImgPerSec: median(1) }])).toThrow(
      /unknown shape 'imagenet'/,
    );
  });

  it("fits a line exactly and refuses degenerate input", () => {
    expect(linearFit([1, 4, 16], [3 + 2, 3 + 8, 3 + 32])).toEqual({ intercept: 3, slope: 2 });
    expect(() => linearFit([4, 4], [1, 2])).toThrow(/distinct/);
    expect(() => linearFit([4], [1])).toThrow(/two or more/);
  });

  it("CPU hours: epochs x images x the fitted seconds per image, summed over runs", () => {
    // 1 ms + 0.5 ms per L per image on MNIST, 2 ms + 1 ms per L on CIFAR.
    const points = [1, 4, 16].flatMap((L) => [
      { dataset: "mnist" as const, L, trainImgPerSec: 1 / (1e-3 + 0.5e-3 * L) },
      { dataset: "cifar10" as const, L, trainImgPerSec: 1 / (2e-3 + 1e-3 * L) },
    ]);
    const estimate = estimateCpuSweep(points);
    expect(estimate.secondsPerImage["mnist"]!.slope).toBeCloseTo(0.5e-3, 12);
    expect(estimate.secondsPerImage["cifar10"]!.intercept).toBeCloseTo(2e-3, 12);
    let slow = 0; // the sweep summed image by image over runs, by hand
    for (const L of PAPER_DEPTHS) {
      slow += (20 * 60_000 + 10_000) * (1e-3 + 0.5e-3 * L);
      slow += (160 * 50_000 + 10_000) * (2e-3 + 1e-3 * L);
    }
    expect(estimate.totalHours).toBeCloseTo(slow / 3600, 6);
    expect(estimate.longestRun).toMatchObject({ dataset: "cifar10", L: 100 });
    expect(estimate.hoursByDataset["mnist"]! + estimate.hoursByDataset["cifar10"]!).toBeCloseTo(estimate.totalHours, 9);
  });

  it("counts forward multiply-adds as the model's own conv kernels at its section shapes do", () => {
    for (const dataset of ["mnist", "cifar10"] as const) {
      for (const L of [1, 3]) {
        const model = createResNet(tfjs, {
          inputShape: DATASETS[dataset].imageShape,
          blocksPerSection: L,
          classes: 10,
          seed: 0,
        });
        const shapes = model.sectionShapes();
        const [h, w] = DATASETS[dataset].imageShape; // 28 -> 14 -> 7 and 32 -> 16 -> 8, at 16, 32, 64 channels
        expect(shapes).toEqual([
          [h, w, 16],
          [h / 2, w / 2, 32],
          [h / 4, w / 4, 64],
        ]);
        let macs = 0; // slow reference: every kernel variable times the size of the activation it produces
        for (const v of model.variables) {
          if (v.role === "dense-kernel") macs += v.shape[0]! * v.shape[1]!;
          if (v.role !== "conv-kernel") continue;
          const section = v.name.startsWith("stem") ? 1 : Number(/(?:section|transition)(\d)/.exec(v.name)![1]);
          const [h, w] = shapes[section - 1]!;
          macs += v.shape.reduce((a, b) => a * b, 1) * h * w;
        }
        model.dispose();
        expect(forwardMacsPerImage(dataset, L)).toBe(macs);
      }
    }
  });

  it("GPU hours: each run is bound by the larger of its FLOPs and its per-op dispatch time", () => {
    const runs = [{ dataset: "mnist" as const, L: 10, epochs: 2, trainImages: 1000, testImages: 100, batchSize: 100 }];
    const flops = 2 * forwardMacsPerImage("mnist", 10) * (3 * 2 * 1000 + 100);
    const slowDispatch = estimateGpuSweep(
      { sustainedFlops: 1e12, secondsPerOp: 1e-3, opsPerStep: { intercept: 100, slope: 10 } },
      runs,
    );
    expect(slowDispatch.computeHours).toBeCloseTo(flops / 1e12 / 3600, 12);
    expect(slowDispatch.dispatchHours).toBeCloseTo((2 * 10 * 200 * 1e-3) / 3600, 12);
    expect(slowDispatch.totalHours).toBe(Math.max(slowDispatch.computeHours, slowDispatch.dispatchHours));
    const slowCompute = estimateGpuSweep(
      { sustainedFlops: 1e6, secondsPerOp: 1e-9, opsPerStep: { intercept: 100, slope: 10 } },
      runs,
    );
    expect(slowCompute.totalHours).toBe(slowCompute.computeHours);
  });
});
