import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { addToSummary, EMPTY_PROBE_SUMMARY, type ProbeRow, type ProbeSummary, probeBatches } from "../science/probe.ts";
import { type ResNet, type TF, createResNet, toModelInput } from "../science/resnet.ts";
import { Rng } from "../science/rng.ts";
import { BACKENDS } from "./fixtures/backends.ts";

// Every suite runs on the pure-JS cpu backend and, when its binding is built, on native TensorFlow.

/** Random uint8 images, N*H*W*C. */
function randomImages(count: number, shape: readonly [number, number, number], seed: number): Uint8Array {
  const rng = Rng.fromSeed(seed);
  return Uint8Array.from({ length: count * shape[0] * shape[1] * shape[2] }, () => rng.nextInt(256));
}

/** Moves BN parameters and moving statistics away from their initial values, so eval mode is non-trivial. */
function perturbBatchNorm(tf: TF, model: ResNet, seed: number): void {
  const rng = Rng.fromSeed(seed);
  for (const v of model.variables) {
    const range: Partial<Record<typeof v.role, [number, number]>> = {
      "bn-gamma": [0.5, 1.5],
      "bn-beta": [-0.3, 0.3],
      "bn-moving-mean": [-0.3, 0.3],
      "bn-moving-variance": [0.5, 2],
    };
    const r = range[v.role];
    if (r === undefined) continue;
    const values = Float32Array.from({ length: v.shape[0]! }, () => r[0] + (r[1] - r[0]) * rng.nextFloat());
    tf.tidy(() => v.variable.assign(tf.tensor1d(values)));
  }
}

async function collectRows(
  tf: TF,
  model: ResNet,
  images: Uint8Array,
  count: number,
  batchSize: number,
  mean: number[],
  std: number[],
): Promise<{ rows: ProbeRow[]; batches: number[]; summary: ProbeSummary }> {
  const rows: ProbeRow[] = [];
  const batches: number[] = [];
  let summary = EMPTY_PROBE_SUMMARY;
  for await (const batch of probeBatches(tf, model, { images, count }, { batchSize, mean, std })) {
    batches.push(batch.rows.length);
    rows.push(...batch.rows);
    summary = addToSummary(summary, batch);
  }
  return { rows, batches, summary };
}

const key = (r: { section: number; block: number; image: number }): string => `${r.section}/${r.block}/${r.image}`;

for (const backend of BACKENDS) {
  const tf = backend.tf;
  const title = tf === undefined ? `${backend.name} backend (skipped: ${backend.reason})` : `${backend.name} backend`;
  describe.skipIf(tf === undefined)(title, () => {
    if (tf === undefined) return;
    beforeAll(async () => {
      await tf.setBackend(backend.name);
    });
    let model: ResNet | undefined;
    afterEach(() => {
      model?.dispose();
      model = undefined;
    });

    it("matches a float64 reference computed from the block inputs and outputs", async () => {
      const shape = [8, 8, 2] as const;
      const count = 5;
      const mean = [0.4, 0.6];
      const std = [0.25, 0.2];
      const images = randomImages(count, shape, 11);
      model = createResNet(tf, { inputShape: shape, blocksPerSection: 2, classes: 10, seed: 5 });
      perturbBatchNorm(tf, model, 6);

      // Reference: one eval forward over all images; per image float64 sums over H*W*C of dataSync'd values.
      const reference = new Map<string, { abs: number; scaled: number; cosine: number; inputNorm: number }>();
      const m = model;
      tf.tidy(() => {
        const x = toModelInput(tf, tf.tensor4d(images, [count, ...shape], "int32"), mean, std);
        m.forward(x, {
          training: false,
          onBlock: (section, block, xIn, xOut, perturbation) => {
            const a = xIn.dataSync();
            const b = xOut.dataSync();
            const f = perturbation.dataSync();
            const size = a.length / count;
            for (let image = 0; image < count; image++) {
              let aa = 0;
              let bb = 0;
              let dd = 0;
              let ff = 0;
              let ab = 0;
              for (let k = image * size; k < (image + 1) * size; k++) {
                const ak = a[k]!;
                const bk = b[k]!;
                aa += ak * ak;
                bb += bk * bk;
                dd += (bk - ak) * (bk - ak);
                ff += f[k]! * f[k]!;
                ab += ak * bk;
              }
              // The perturbation handed to onBlock is the block's difference x_{l+1} - x_l (up to float32 rounding).
              expect(Math.abs(Math.sqrt(ff) - Math.sqrt(dd)) / Math.sqrt(dd)).toBeLessThan(1e-4);
              const inputNorm = Math.sqrt(aa);
              // The model numbers sections and blocks from 1, the probe's rows from 0.
              reference.set(key({ section: section - 1, block: block - 1, image }), {
                abs: Math.sqrt(ff),
                scaled: Math.sqrt(ff) / inputNorm,
                cosine: ab / (inputNorm * Math.sqrt(bb)),
                inputNorm,
              });
            }
          },
        });
      });

      const { rows, batches, summary } = await collectRows(tf, model, images, count, 2, mean, std);
      expect(batches).toEqual([2 * 6, 2 * 6, 1 * 6]); // 3 batches of (images x 3L blocks) rows
      expect(summary).toEqual({ images: count, rows: count * 6, zeroInputNorm: 0, zeroOutputNorm: 0 });
      expect(new Set(rows.map(key))).toEqual(new Set(reference.keys()));
      for (const row of rows) {
        const ref = reference.get(key(row))!;
        expect(row.inputNorm).toBeCloseTo(ref.inputNorm, 3);
        expect(Math.abs(row.abs - ref.abs) / ref.abs).toBeLessThan(1e-5);
        expect(Math.abs(row.scaled! - ref.scaled) / ref.scaled).toBeLessThan(1e-5);
        expect(Math.abs(row.cosine! - ref.cosine)).toBeLessThan(1e-5);
      }
      // A random, BN-perturbed network is not close to identity: the reference must see real variation.
      const scaled = rows.map((r) => r.scaled!);
      expect(Math.max(...scaled) - Math.min(...scaled)).toBeGreaterThan(0.05);
    });

    it("gives scaled = |a| and cosine = sign(1 + a) for blocks that add a * x", async () => {
      const shape = [6, 5, 3] as const;
      const count = 4;
      const factors = [
        [0.25, -0.5],
        [2, -1.5],
        [0.01, -3],
      ]; // per section, per block
      const a = (section: number, block: number): number => factors[section - 1]![block - 1]!;
      model = createResNet(tf, {
        inputShape: shape,
        blocksPerSection: 2,
        classes: 10,
        seed: 2,
        residualOverride: (section, block, x) => tf.mul(x, a(section, block)),
      });
      const { rows, summary } = await collectRows(
        tf,
        model,
        randomImages(count, shape, 3),
        count,
        3,
        [0.5, 0.5, 0.5],
        [0.3, 0.3, 0.3],
      );
      expect(summary.rows).toBe(count * 6);
      expect(summary.zeroInputNorm).toBe(0);
      for (const row of rows) {
        const factor = a(row.section + 1, row.block + 1); // rows number sections and blocks from 0
        expect(row.scaled).toBeCloseTo(Math.abs(factor), 5);
        expect(row.abs / row.inputNorm).toBeCloseTo(Math.abs(factor), 5);
        expect(row.outputNorm / row.inputNorm).toBeCloseTo(Math.abs(1 + factor), 5);
        expect(row.cosine).toBeCloseTo(Math.sign(1 + factor), 5);
      }
    });

    it("returns null (never NaN) for zero-norm inputs and counts them", async () => {
      const shape = [8, 8, 1] as const;
      const count = 5;
      const images = randomImages(count, shape, 4);
      const zeroImages = [1, 3];
      for (const i of zeroImages) images.fill(0, i * 64, (i + 1) * 64);
      // mean 0 maps a black image to an all-zero input; bias-free convs and fresh BN (beta 0,
      // moving mean 0) keep every activation of that image exactly zero.
      model = createResNet(tf, { inputShape: shape, blocksPerSection: 1, classes: 10, seed: 8 });
      const { rows, summary } = await collectRows(tf, model, images, count, 2, [0], [1]);
      expect(summary.zeroInputNorm).toBe(zeroImages.length * 3);
      expect(summary.zeroOutputNorm).toBe(0);
      for (const row of rows) {
        for (const value of [row.abs, row.scaled, row.cosine, row.inputNorm, row.outputNorm]) {
          expect(Number.isNaN(value)).toBe(false);
        }
        if (zeroImages.includes(row.image)) {
          expect(row).toMatchObject({ scaled: null, cosine: null, inputNorm: 0, abs: 0 });
        } else {
          expect(row.inputNorm).toBeGreaterThan(0);
          expect(row.scaled).not.toBeNull();
          expect(row.cosine).not.toBeNull();
        }
      }
    });

    it("streams batch by batch without leaking tensors", async () => {
      const shape = [4, 4, 1] as const;
      model = createResNet(tf, { inputShape: shape, blocksPerSection: 3, classes: 10, seed: 1 });
      const before = tf.memory().numTensors;
      const tensorsDuringRows: number[] = [];
      const progress: number[] = [];
      let rows = 0;
      const data = { images: randomImages(10, shape, 1), count: 10 };
      for await (const batch of probeBatches(tf, model, data, { batchSize: 4, mean: [0.5], std: [0.5] })) {
        tensorsDuringRows.push(tf.memory().numTensors);
        progress.push(batch.imagesDone / batch.imagesTotal);
        rows += batch.rows.length;
      }
      expect(rows).toBe(10 * 9);
      expect(progress).toEqual([0.4, 0.8, 1]);
      expect(tensorsDuringRows).toEqual([before, before, before]);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
