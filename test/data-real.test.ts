/**
 * The decoders against the genuine MNIST and CIFAR-10 files in ../shared/datasets (beside the checkout). Expected
 * values are the published ones from that folder's README, written out here so that the constants in
 * science/data/datasets.ts are checked too. Prints how long decoding + statistics take.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CIFAR10, MNIST, type DatasetSpec, type Split } from "../science/data/datasets.ts";
import { loadSplit, readCifarClassNames } from "../science/data/load.ts";
import { describeProblems, verifyFiles } from "../science/data/verify.ts";
import { channelMeanStd, labelHistogram } from "../science/data/stats.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dataDir = path.resolve(repoRoot, "../shared/datasets");
const present = existsSync(dataDir);

/** Published values (README of the shared folder). */
const published = {
  mnist: {
    sizes: { train: 60000, test: 10000 },
    histogram: {
      train: [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
      test: [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    },
    mean: [0.1307],
    std: [0.3081],
  },
  cifar10: {
    sizes: { train: 50000, test: 10000 },
    histogram: { train: Array<number>(10).fill(5000), test: Array<number>(10).fill(1000) },
    mean: [0.4914, 0.4822, 0.4465],
    std: [0.247, 0.2435, 0.2616],
  },
};

/** Values published to 4 decimals: the exact value must round to them. */
const TOLERANCE = 5e-5;

const suiteName = present
  ? `genuine data sets in ${dataDir}`
  : `genuine data sets: SKIPPED because ${dataDir} does not exist (CI puts ../shared beside the checkout)`;

describe.skipIf(!present)(suiteName, () => {
  for (const spec of [MNIST, CIFAR10] as DatasetSpec[]) {
    const expected = published[spec.name];

    describe(spec.displayName, () => {
      it("has every distribution file with the published size and md5", async () => {
        const checks = await verifyFiles(spec, dataDir);
        expect(describeProblems(spec, checks)).toEqual([]);
        expect(checks.length).toBe(spec.name === "mnist" ? 4 : 7);
      });

      it("decodes both splits with the published sizes, label histograms and training mean/std", async () => {
        expect(spec.splitSizes).toEqual(expected.sizes);
        expect(spec.labelHistogram).toEqual(expected.histogram);
        for (const split of ["train", "test"] as Split[]) {
          const start = performance.now();
          const data = await loadSplit(spec, dataDir, split);
          const decoded = performance.now();
          const stats = channelMeanStd(data.pixels, data.channels);
          const histogram = labelHistogram(data.labels, spec.classCount);
          const done = performance.now();
          console.log(
            `${spec.displayName} ${split}: ${data.count} images, decode ${(decoded - start).toFixed(0)} ms, ` +
              `stats ${(done - decoded).toFixed(0)} ms; mean ${stats.mean.map((m) => m.toFixed(6)).join(" ")}, ` +
              `std ${stats.std.map((s) => s.toFixed(6)).join(" ")}`,
          );

          expect([data.count, data.height, data.width, data.channels]).toEqual([
            expected.sizes[split],
            ...spec.imageShape,
          ]);
          expect(data.pixels.length).toBe(data.count * data.height * data.width * data.channels);
          expect(histogram).toEqual(expected.histogram[split]);
          if (split === "train") {
            expect(stats.mean).toHaveLength(expected.mean.length);
            stats.mean.forEach((m, c) => expect(Math.abs(m - expected.mean[c]!)).toBeLessThan(TOLERANCE));
            stats.std.forEach((s, c) => expect(Math.abs(s - expected.std[c]!)).toBeLessThan(TOLERANCE));
            expect(spec.publishedMean).toEqual(expected.mean);
            expect(spec.publishedStd).toEqual(expected.std);
          }
          // Well-known first labels: MNIST train 5 / test 7; CIFAR-10 train 6 (frog) / test 3 (cat).
          const firstLabel = { mnist: { train: 5, test: 7 }, cifar10: { train: 6, test: 3 } }[spec.name][split];
          expect(data.labels[0]).toBe(firstLabel);
        }
      });
    });
  }

  it("reads the CIFAR-10 class names from batches.meta.txt", async () => {
    const names = await readCifarClassNames(dataDir);
    expect(names).toEqual(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]);
    expect(CIFAR10.classNames).toEqual(names);
  });
});
