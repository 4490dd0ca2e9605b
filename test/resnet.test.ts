import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type * as tfjs from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BN_EPSILON,
  type OnBatchMoments,
  batchNormReluTraining,
  batchNormTraining,
  fusedBatchNormReluTraining,
  hasFusedBatchNorm,
  reluTraining,
} from "../science/batchnorm.ts";
import { loadResNet, saveResNet, serializeResNet } from "../science/model-io.ts";
import { type ResNet, type TF, createResNet, layerCounts, toModelInput } from "../science/resnet.ts";
import { Rng, hashWords } from "../science/rng.ts";
import { BACKENDS } from "./fixtures/backends.ts";

// Every suite runs on the pure-JS cpu backend and, when its binding is built, on native TensorFlow.

const MNIST = [28, 28, 1] as const;
const CIFAR = [32, 32, 3] as const;

function randomPixels(tf: TF, count: number, shape: readonly [number, number, number], seed: number): tfjs.Tensor4D {
  const rng = Rng.fromSeed(seed);
  const values = Int32Array.from({ length: count * shape[0] * shape[1] * shape[2] }, () => rng.nextInt(256));
  return tf.tensor4d(values, [count, ...shape], "int32");
}

async function weightBytes(model: ResNet): Promise<Uint8Array> {
  return (await serializeResNet(model)).weightsBin;
}

/** A training-mode BatchNorm + ReLU path of science/batchnorm.ts, with the batch moments handed to a callback. */
type BnRelu = (
  tf: TF,
  x: tfjs.Tensor4D,
  gamma: tfjs.Tensor1D,
  beta: tfjs.Tensor1D,
  onBatchMoments: OnBatchMoments,
) => tfjs.Tensor4D;
const closedForm: BnRelu = (tf, x, gamma, beta, onBatchMoments) =>
  reluTraining(tf, batchNormTraining(tf, x, gamma, beta, onBatchMoments));

/** Batch mean and biased batch variance per channel (last axis), in float64. */
function moments64(x: ArrayLike<number>, channels: number): { mean: Float64Array; variance: Float64Array } {
  const n = x.length / channels;
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  for (let k = 0; k < x.length; k++) mean[k % channels] = mean[k % channels]! + x[k]! / n;
  for (let k = 0; k < x.length; k++)
    variance[k % channels] = variance[k % channels]! + (x[k]! - mean[k % channels]!) ** 2 / n;
  return { mean, variance };
}

/** relu(gamma * (x - mean) / sqrt(variance + eps) + beta) with the batch moments, in float64: the slow reference. */
function bnRelu64(x: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number>): Float64Array {
  const channels = gamma.length;
  const { mean, variance } = moments64(x, channels);
  return Float64Array.from({ length: x.length }, (_, k) => {
    const c = k % channels;
    return Math.max(0, (gamma[c]! * (x[k]! - mean[c]!)) / Math.sqrt(variance[c]! + BN_EPSILON) + beta[c]!);
  });
}

/** Central differences of f at `at` (float64), one coordinate at a time. */
function finiteDifferences(f: (v: Float64Array) => number, at: ArrayLike<number>, h = 1e-6): Float64Array {
  const v = Float64Array.from(at);
  const grad = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const keep = v[i]!;
    v[i] = keep + h;
    const up = f(v);
    v[i] = keep - h;
    const down = f(v);
    v[i] = keep;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

/** max |a - b| / max |b|. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return worst / scale;
}

describe("rng", () => {
  it("is deterministic per seed and stream, and restores from its state", () => {
    const draw = (rng: Rng): number[] => Array.from({ length: 5 }, () => rng.nextUint32());
    expect(draw(Rng.fromSeed(1, 2))).toEqual(draw(Rng.fromSeed(1, 2)));
    expect(draw(Rng.fromSeed(1, 2))).not.toEqual(draw(Rng.fromSeed(1, 3)));
    expect(draw(Rng.fromSeed(1))).not.toEqual(draw(Rng.fromSeed(2)));
    const rng = Rng.fromSeed(9);
    draw(rng);
    const state = JSON.parse(JSON.stringify(rng.state()));
    expect(draw(Rng.fromState(state))).toEqual(draw(rng));
    expect(hashWords([2 ** 40 + 1])).not.toBe(hashWords([1])); // high words matter
  });

  it("draws uniform integers, permutations and standard normals", () => {
    const rng = Rng.fromSeed(3);
    const counts = new Array<number>(7).fill(0);
    for (let i = 0; i < 70_000; i++) counts[rng.nextInt(7)]!++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500); // ~5 sigma
    expect([...rng.permutation(50)].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    let sum = 0;
    let sumSq = 0;
    const n = 50_000;
    for (let i = 0; i < n; i++) {
      const z = rng.nextNormal();
      expect(Number.isFinite(z)).toBe(true);
      sum += z;
      sumSq += z * z;
    }
    expect(Math.abs(sum / n)).toBeLessThan(0.03);
    expect(Math.abs(sumSq / n - 1)).toBeLessThan(0.03);
  });
});

describe("layer counts", () => {
  it.each([1, 2, 5, 100])("L=%i: 6L+2 paper layers; the two 1x1 transitions are extra", (L) => {
    const counts = layerCounts(L);
    expect(counts.paperWeightedLayers).toBe(6 * L + 2);
    expect(counts.transitionConvs).toBe(2);
    expect(counts.allWeightedLayers).toBe(6 * L + 4);
    expect(counts.residualBlocks).toBe(3 * L);
  });
});

for (const backend of BACKENDS) {
  const tf = backend.tf;
  const title = tf === undefined ? `${backend.name} backend (skipped: ${backend.reason})` : `${backend.name} backend`;
  describe.skipIf(tf === undefined)(title, () => {
    if (tf === undefined) return;
    beforeAll(async () => {
      await tf.setBackend(backend.name);
    });

    describe.each([
      {
        input: MNIST,
        sections: [
          [28, 28, 16],
          [14, 14, 32],
          [7, 7, 64],
        ],
      },
      {
        input: CIFAR,
        sections: [
          [32, 32, 16],
          [16, 16, 32],
          [8, 8, 64],
        ],
      },
      {
        input: [7, 9, 2] as const,
        sections: [
          [7, 9, 16],
          [4, 5, 32],
          [2, 3, 64],
        ],
      },
    ])("input $input", ({ input, sections }) => {
      it.each([1, 2, 5])("L=%i: block shapes per section, logits, and weighted layers", (L) => {
        const model = createResNet(tf, { inputShape: input, blocksPerSection: L, classes: 10, seed: 1 });
        try {
          const seen: Array<{ section: number; block: number; shapeIn: number[]; shapeOut: number[] }> = [];
          const logits = tf.tidy(() =>
            model.forward(
              toModelInput(
                tf,
                randomPixels(tf, 2, input, 1),
                [0.5, 0.5, 0.5].slice(0, input[2]),
                [0.25, 0.25, 0.25].slice(0, input[2]),
              ),
              {
                training: false,
                onBlock: (section, block, xIn, xOut) =>
                  seen.push({ section, block, shapeIn: xIn.shape, shapeOut: xOut.shape }),
              },
            ),
          );
          expect(logits.shape).toEqual([2, 10]);
          expect([...logits.dataSync()].every(Number.isFinite)).toBe(true);
          logits.dispose();
          const expected = sections.flatMap((hwc, s) =>
            Array.from({ length: L }, (_, b) => ({
              section: s + 1,
              block: b + 1,
              shapeIn: [2, ...hwc],
              shapeOut: [2, ...hwc],
            })),
          );
          expect(seen).toEqual(expected);
          expect(model.sectionShapes()).toEqual(sections);

          // The paper's 6L+2 counts the 3x3 convs and the dense layer; the 1x1 transitions are separate.
          const kernels = model.variables.filter((v) => v.role === "conv-kernel" || v.role === "dense-kernel");
          const threeByThree = kernels.filter((v) => v.shape[0] === 3 && v.shape[1] === 3).length;
          const dense = kernels.filter((v) => v.role === "dense-kernel").length;
          const oneByOne = kernels.filter((v) => v.shape[0] === 1 && v.shape[1] === 1).length;
          expect(threeByThree + dense).toBe(6 * L + 2);
          expect(model.layerCounts().paperWeightedLayers).toBe(threeByThree + dense);
          expect(oneByOne).toBe(model.layerCounts().transitionConvs);
        } finally {
          model.dispose();
        }
      });
    });

    it("same seed gives the same weights; another seed other weights; He-normal scale", async () => {
      const options = { inputShape: CIFAR, blocksPerSection: 2, classes: 10 } as const;
      const a = createResNet(tf, { ...options, seed: 42 });
      const b = createResNet(tf, { ...options, seed: 42 });
      const c = createResNet(tf, { ...options, seed: 43 });
      try {
        const [wa, wb, wc] = await Promise.all([a, b, c].map(weightBytes));
        expect(Buffer.from(wa!).equals(Buffer.from(wb!))).toBe(true);
        expect(Buffer.from(wa!).equals(Buffer.from(wc!))).toBe(false);
        const conv = a.variables.find((v) => v.name === "section3/block2/conv1")!;
        const values = conv.variable.dataSync() as Float32Array;
        const std = Math.sqrt(values.reduce((sum, x) => sum + x * x, 0) / values.length);
        expect(std / Math.sqrt(2 / (3 * 3 * 64))).toBeGreaterThan(0.98);
        expect(std / Math.sqrt(2 / (3 * 3 * 64))).toBeLessThan(1.02);
      } finally {
        for (const m of [a, b, c]) m.dispose();
      }
    });

    if (backend.name !== "cpu") {
      it("creates bit-identical weights to the cpu backend for the same seed", async () => {
        const options = { inputShape: MNIST, blocksPerSection: 1, classes: 10, seed: 7 } as const;
        const here = createResNet(tf, options);
        await tf.setBackend("cpu");
        const onCpu = createResNet(tf, options);
        try {
          const cpuBytes = await weightBytes(onCpu);
          await tf.setBackend(backend.name);
          expect(Buffer.from(await weightBytes(here)).equals(Buffer.from(cpuBytes))).toBe(true);
        } finally {
          await tf.setBackend(backend.name);
          here.dispose();
          onCpu.dispose();
        }
      });
    }

    it("training mode uses batch statistics and updates moving averages by 0.1; eval mode uses them", () => {
      const model = createResNet(tf, { inputShape: [6, 6, 1], blocksPerSection: 1, classes: 10, seed: 3 });
      try {
        const pixels = randomPixels(tf, 4, [6, 6, 1], 2);
        const x = toModelInput(tf, pixels, [0.5], [0.3]);
        pixels.dispose();
        // The head BN normalises the output of the last block; capture it to compute its batch moments.
        let headInput: Float32Array = new Float32Array();
        tf.tidy(() =>
          model.forward(x, {
            training: true,
            onBlock: (section, _block, _xIn, xOut) => {
              if (section === 3) headInput = xOut.dataSync() as Float32Array;
            },
          }),
        );
        const channels = 64;
        const perChannel = headInput.length / channels;
        const byName = (name: string): Float32Array =>
          model.variables.find((v) => v.name === name)!.variable.dataSync() as Float32Array;
        const movingMean = byName("head/bn/movingMean");
        const movingVariance = byName("head/bn/movingVariance");
        for (let ch = 0; ch < channels; ch++) {
          let sum = 0;
          for (let k = ch; k < headInput.length; k += channels) sum += headInput[k]!;
          const mean = sum / perChannel;
          let sq = 0;
          for (let k = ch; k < headInput.length; k += channels) sq += (headInput[k]! - mean) ** 2;
          const biasedVariance = sq / perChannel;
          expect(movingMean[ch]).toBeCloseTo(0.9 * 0 + 0.1 * mean, 5);
          expect(movingVariance[ch]).toBeCloseTo(0.9 * 1 + 0.1 * biasedVariance, 4);
        }

        // Eval mode: an image's logits do not depend on the rest of the batch; training mode: they do.
        const logitsOf = (input: tfjs.Tensor4D, training: boolean): Float32Array =>
          tf.tidy(() => model.forward(input, { training }).dataSync() as Float32Array);
        const first = tf.slice(x, [0, 0, 0, 0], [2, 6, 6, 1]);
        const evalAll = logitsOf(x, false).slice(0, 20);
        const evalFirst = logitsOf(first, false);
        for (let k = 0; k < 20; k++) expect(evalFirst[k]).toBeCloseTo(evalAll[k]!, 5);
        const trainAll = logitsOf(x, true).slice(0, 20);
        const trainFirst = logitsOf(first, true);
        expect(Math.max(...trainFirst.map((v, k) => Math.abs(v - trainAll[k]!)))).toBeGreaterThan(1e-3);
        first.dispose();
        x.dispose();
      } finally {
        model.dispose();
      }
    });

    it("hand-written BatchNorm and ReLU gradients equal TensorFlow.js autodiff", () => {
      const rng = Rng.fromSeed(21);
      const random = (shape: number[], scale: number, offset = 0): tfjs.Tensor =>
        tf.tensor(
          Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => offset + scale * rng.nextNormal()),
          shape,
        );
      const x = random([3, 4, 5, 6], 2, 0.5) as tfjs.Tensor4D;
      const gamma = random([6], 0.3, 1) as tfjs.Tensor1D;
      const beta = random([6], 0.3) as tfjs.Tensor1D;
      const w = random([3, 4, 5, 6], 1);
      const maxRelativeDifference = (a: tfjs.Tensor, b: tfjs.Tensor): number =>
        tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]! / tf.max(tf.abs(b)).dataSync()[0]!);
      tf.tidy(() => {
        let moments: Float32Array[] = [];
        const ours = tf.grads((xi: tfjs.Tensor, g: tfjs.Tensor, b: tfjs.Tensor) =>
          tf.sum(
            tf.mul(
              batchNormTraining(tf, xi as tfjs.Tensor4D, g as tfjs.Tensor1D, b as tfjs.Tensor1D, (mean, variance) => {
                moments = [mean.dataSync() as Float32Array, variance.dataSync() as Float32Array];
              }),
              w,
            ),
          ),
        )([x, gamma, beta]);
        const autodiff = tf.grads((xi: tfjs.Tensor, g: tfjs.Tensor, b: tfjs.Tensor) => {
          const { mean, variance } = tf.moments(xi, [0, 1, 2]);
          return tf.sum(
            tf.mul(tf.batchNorm(xi as tfjs.Tensor4D, mean, variance, b as tfjs.Tensor1D, g as tfjs.Tensor1D, 1e-5), w),
          );
        })([x, gamma, beta]);
        ours.forEach((g, i) => expect(maxRelativeDifference(g, autodiff[i]!)).toBeLessThan(1e-4));
        const reference = tf.moments(x, [0, 1, 2]);
        expect(maxRelativeDifference(tf.tensor1d(moments[0]!), reference.mean)).toBeLessThan(1e-6);
        expect(maxRelativeDifference(tf.tensor1d(moments[1]!), reference.variance)).toBeLessThan(1e-6);
        const values = batchNormTraining(tf, x, gamma, beta);
        expect(
          maxRelativeDifference(values, tf.batchNorm(x, reference.mean, reference.variance, beta, gamma, 1e-5)),
        ).toBeLessThan(1e-5);

        const withZeros = tf.mul<tfjs.Tensor4D>(x, tf.cast(tf.greater(w, -0.5), "float32")); // exact zeros too
        const reluOurs = tf.grad((xi: tfjs.Tensor) => tf.sum(tf.mul(reluTraining(tf, xi as tfjs.Tensor4D), w)))(
          withZeros,
        );
        const reluAutodiff = tf.grad((xi: tfjs.Tensor) => tf.sum(tf.mul(tf.relu(xi), w)))(withZeros);
        expect([...reluOurs.dataSync()]).toEqual([...reluAutodiff.dataSync()]);
        expect([...reluTraining(tf, withZeros).dataSync()]).toEqual([...tf.relu(withZeros).dataSync()]);
      });
      tf.dispose([x, gamma, beta, w]);
    });

    it("the model's training-mode BatchNorm + ReLU is the fused kernels natively, else the closed form", () => {
      const rng = Rng.fromSeed(23);
      tf.tidy(() => {
        const x = tf.tensor4d(
          Float32Array.from({ length: 2 * 3 * 3 * 4 }, () => rng.nextNormal()),
          [2, 3, 3, 4],
        );
        const [gamma, beta] = [tf.tensor1d([1, 0.5, 2, 1.5]), tf.tensor1d([0, 0.1, -0.1, 0.2])];
        const expected = backend.name === "tensorflow" ? fusedBatchNormReluTraining : closedForm;
        const bytes = (bnRelu: BnRelu) => Buffer.from(bnRelu(tf, x, gamma, beta, () => {}).dataSync().buffer);
        expect(bytes(batchNormReluTraining).equals(bytes(expected))).toBe(true);
      });
    });

    it("training-mode BatchNorm + ReLU (closed form; fused kernels on native TensorFlow): values, moments and gradients match float64 finite differences", () => {
      expect(hasFusedBatchNorm(tf)).toBe(backend.name === "tensorflow");
      const implementations: Array<[string, BnRelu]> = [["closed form", closedForm]];
      if (hasFusedBatchNorm(tf)) implementations.push(["fused", fusedBatchNormReluTraining]);
      const rng = Rng.fromSeed(22);
      const shape = [3, 4, 5, 6] as const;
      const normals = (length: number, scale: number, offset = 0) =>
        Float32Array.from({ length }, () => offset + scale * rng.nextNormal());
      const x = normals(3 * 4 * 5 * 6, 2, 0.5);
      const gamma = normals(6, 0.3, 1);
      const beta = normals(6, 0.3);
      const w = normals(x.length, 1);
      // The reference: loss = sum(w * bnRelu(x)) and its gradients, all in float64 from the same float32 inputs.
      const loss64 = (xs: ArrayLike<number>, g: ArrayLike<number>, b: ArrayLike<number>) =>
        bnRelu64(xs, g, b).reduce((sum, y, k) => sum + w[k]! * y, 0);
      const expected = {
        y: bnRelu64(x, gamma, beta),
        ...moments64(x, 6),
        dx: finiteDifferences((v) => loss64(v, gamma, beta), x),
        dGamma: finiteDifferences((v) => loss64(x, v, beta), gamma),
        dBeta: finiteDifferences((v) => loss64(x, gamma, v), beta),
      };
      for (const [name, bnRelu] of implementations) {
        tf.tidy(() => {
          const inputs = [tf.tensor4d(x, [...shape]), tf.tensor1d(gamma), tf.tensor1d(beta)] as const;
          const weights = tf.tensor4d(w, [...shape]);
          let moments: Float32Array[] = [];
          const onBatchMoments = (mean: tfjs.Tensor1D, variance: tfjs.Tensor1D) => {
            moments = [mean.dataSync() as Float32Array, variance.dataSync() as Float32Array];
          };
          const y = bnRelu(tf, ...inputs, onBatchMoments).dataSync();
          const [dx, dGamma, dBeta] = tf
            .grads((xi: tfjs.Tensor, g: tfjs.Tensor, b: tfjs.Tensor) =>
              tf.sum(
                tf.mul(
                  bnRelu(tf, xi as tfjs.Tensor4D, g as tfjs.Tensor1D, b as tfjs.Tensor1D, () => {}),
                  weights,
                ),
              ),
            )([...inputs])
            .map((t) => t.dataSync());
          const errors = {
            y: relativeError(y, expected.y),
            mean: relativeError(moments[0]!, expected.mean),
            variance: relativeError(moments[1]!, expected.variance), // biased: the fused kernel's n/(n-1) is undone
            dx: relativeError(dx!, expected.dx),
            dGamma: relativeError(dGamma!, expected.dGamma),
            dBeta: relativeError(dBeta!, expected.dBeta),
          };
          for (const [what, error] of Object.entries(errors)) expect(error, `${name} ${what}`).toBeLessThan(1e-5);
        });
      }
    });

    if (backend.name === "tensorflow") {
      it("fused BatchNorm + ReLU equals autodiff of tf.relu(tf.batchNorm(...)) to float32 rounding, exact zeros included", () => {
        const rng = Rng.fromSeed(23);
        const random = (shape: number[], scale: number, offset = 0): tfjs.Tensor =>
          tf.tensor(
            Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => offset + scale * rng.nextNormal()),
            shape,
          );
        tf.tidy(() => {
          // Channel 5 is constant with beta 0: its BN output is exactly 0, where ReLU's gradient is 0.
          const isLast = tf.equal(tf.range(0, 6, 1, "int32"), 5);
          const x = tf.where(
            isLast,
            tf.onesLike(random([3, 4, 5, 6], 1)),
            random([3, 4, 5, 6], 2, 0.5),
          ) as tfjs.Tensor4D;
          const gamma = random([6], 0.3, 1) as tfjs.Tensor1D;
          const beta = tf.where(isLast, tf.zeros([6]), random([6], 0.3)) as tfjs.Tensor1D;
          const w = random([3, 4, 5, 6], 1);
          const maxRelativeDifference = (a: tfjs.Tensor, b: tfjs.Tensor): number =>
            tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]! / tf.max(tf.abs(b)).dataSync()[0]!;
          const reference = tf.moments(x, [0, 1, 2]);
          const composite = (xi: tfjs.Tensor, g: tfjs.Tensor, b: tfjs.Tensor) => {
            const { mean, variance } = tf.moments(xi, [0, 1, 2]);
            return tf.relu(
              tf.batchNorm(xi as tfjs.Tensor4D, mean, variance, b as tfjs.Tensor1D, g as tfjs.Tensor1D, BN_EPSILON),
            );
          };
          let moments: Float32Array[] = []; // the callback's tensors live only during the call: read them there
          const fused = fusedBatchNormReluTraining(tf, x, gamma, beta, (mean, variance) => {
            moments = [mean.dataSync() as Float32Array, variance.dataSync() as Float32Array];
          });
          expect(maxRelativeDifference(fused, composite(x, gamma, beta))).toBeLessThan(1e-5);
          expect(maxRelativeDifference(tf.tensor1d(moments[0]!), reference.mean)).toBeLessThan(1e-6);
          expect(maxRelativeDifference(tf.tensor1d(moments[1]!), reference.variance)).toBeLessThan(1e-5);
          const ours = tf.grads((xi: tfjs.Tensor, g: tfjs.Tensor, b: tfjs.Tensor) =>
            tf.sum(
              tf.mul(fusedBatchNormReluTraining(tf, xi as tfjs.Tensor4D, g as tfjs.Tensor1D, b as tfjs.Tensor1D), w),
            ),
          )([x, gamma, beta]);
          const autodiff = tf.grads((xi: tfjs.Tensor, g: tfjs.Tensor, b: tfjs.Tensor) =>
            tf.sum(tf.mul(composite(xi, g, b), w)),
          )([x, gamma, beta]);
          ours.forEach((g, i) => expect(maxRelativeDifference(g, autodiff[i]!)).toBeLessThan(1e-4));
          const lastChannel = (t: tfjs.Tensor) => [...tf.gather(t, [5], t.rank - 1).dataSync()];
          expect(lastChannel(fused).every((v) => v === 0)).toBe(true);
          for (const g of [...ours, ...autodiff]) expect(lastChannel(g).every((v) => v === 0)).toBe(true);
        });
      });
    }

    describe("save and load", () => {
      let dir = "";
      beforeAll(async () => {
        dir = await mkdtemp(path.join(tmpdir(), "resnet-test-"));
      });
      afterAll(async () => {
        await rm(dir, { recursive: true, force: true });
      });

      it("round-trips to model.json + weights.bin with identical eval outputs", async () => {
        const shape = [10, 10, 3] as const;
        const model = createResNet(tf, { inputShape: shape, blocksPerSection: 2, classes: 10, seed: 12 });
        const x = tf.tidy(() =>
          toModelInput(tf, randomPixels(tf, 3, shape, 5), [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]),
        );
        try {
          // A training-mode pass moves the BN moving statistics off their initial values.
          tf.tidy(() => model.forward(x, { training: true }));
          await saveResNet(model, dir);
          expect((await readdir(dir)).sort()).toEqual(["model.json", "weights.bin"]);
          const json = JSON.parse(await readFile(path.join(dir, "model.json"), "utf8"));
          expect(json.topology).toMatchObject({
            arch: "preact-resnet-hauser2019",
            blocksPerSection: 2,
            inputShape: [10, 10, 3],
            classes: 10,
          });
          expect(json.weightsManifest[0].paths).toEqual(["weights.bin"]);
          expect(json.weightsManifest[0].weights.map((w: { name: string }) => w.name)).toEqual(
            model.variables.map((v) => v.name),
          );

          const loaded = await loadResNet(tf, dir);
          try {
            expect(loaded.config).toEqual(model.config);
            expect(Buffer.from(await weightBytes(loaded)).equals(Buffer.from(await weightBytes(model)))).toBe(true);
            const out = (m: ResNet): Float32Array =>
              tf.tidy(() => m.forward(x, { training: false }).dataSync() as Float32Array);
            expect(out(loaded)).toEqual(out(model));
          } finally {
            loaded.dispose();
          }
        } finally {
          x.dispose();
          model.dispose();
        }
      });
    });

    it("forward and dispose release every tensor", () => {
      const before = tf.memory().numTensors;
      const model = createResNet(tf, { inputShape: [8, 8, 1], blocksPerSection: 3, classes: 10, seed: 1 });
      const x = tf.zeros<tfjs.Rank.R4>([2, 8, 8, 1]);
      for (const training of [true, false]) tf.tidy(() => void model.forward(x, { training }));
      x.dispose();
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
