/**
 * The trained model as files: weights as a standard tfjs weights manifest + binary (also what training checkpoints
 * hold), and the model artifact model.json (our topology description + the manifest) beside weights.bin.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type * as tfjs from "@tensorflow/tfjs";
import { writeFileAtomic } from "../cache/fsutil.ts";
import { BN_EPSILON, BN_MOVING_AVERAGE_UPDATE } from "./batchnorm.ts";
import { ARCHITECTURE, createZeroResNet, type ResNet, type ResNetConfig, type TF } from "./resnet.ts";

export type WeightSpecs = tfjs.io.WeightsManifestEntry[];

/** Encodes the given named tensors (in order) with tf.io.encodeWeights. */
export async function encodeNamedTensors(
  tf: TF,
  tensors: ReadonlyArray<{ readonly name: string; readonly tensor: tfjs.Tensor }>,
): Promise<{ specs: WeightSpecs; data: Uint8Array }> {
  const { data, specs } = await tf.io.encodeWeights(tensors.map(({ name, tensor }) => ({ name, tensor })));
  return { specs, data: new Uint8Array(data) };
}

/**
 * Decodes bytes written by {@link encodeNamedTensors}. The caller owns (must dispose) the tensors.
 */
export function decodeNamedTensors(tf: TF, specs: WeightSpecs, data: Uint8Array): Map<string, tfjs.Tensor> {
  const buffer = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
  return new Map(Object.entries(tf.io.decodeWeights(buffer, specs)));
}

/** Copies values into the model's variables; names, shapes and dtypes must match exactly and completely. */
export function assignVariables(model: ResNet, values: ReadonlyMap<string, tfjs.Tensor>): void {
  for (const v of model.variables) {
    const t = values.get(v.name);
    if (t === undefined) throw new Error(`weights: missing ${v.name}`);
    if (t.dtype !== "float32" || !sameShape(t.shape, v.shape)) {
      throw new Error(`weights: ${v.name} is ${t.dtype}[${t.shape.join(",")}], expected float32[${v.shape.join(",")}]`);
    }
  }
  for (const v of model.variables) v.variable.assign(values.get(v.name)!);
}

const sameShape = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

export const MODEL_JSON = "model.json";
export const WEIGHTS_BIN = "weights.bin";

/** model.json: a tfjs weights manifest plus our own topology description. */
export interface ResNetModelJson {
  readonly format: typeof ARCHITECTURE;
  readonly generatedBy: string;
  readonly topology: {
    readonly arch: typeof ARCHITECTURE;
    readonly blocksPerSection: number;
    readonly inputShape: readonly [number, number, number];
    readonly classes: number;
    readonly bnEpsilon: number;
    readonly bnMovingAverageUpdate: number;
  };
  readonly weightsManifest: ReadonlyArray<{ readonly paths: ReadonlyArray<string>; readonly weights: WeightSpecs }>;
}

/** The model as artifact contents: model.json (object) and weights.bin (bytes). */
export async function serializeResNet(model: ResNet): Promise<{ modelJson: ResNetModelJson; weightsBin: Uint8Array }> {
  const { specs, data } = await encodeNamedTensors(
    model.tf,
    model.variables.map((v) => ({ name: v.name, tensor: v.variable })),
  );
  const modelJson: ResNetModelJson = {
    format: ARCHITECTURE,
    generatedBy: `TensorFlow.js tfjs-core v${model.tf.version_core}`,
    topology: {
      arch: ARCHITECTURE,
      blocksPerSection: model.config.blocksPerSection,
      inputShape: model.config.inputShape,
      classes: model.config.classes,
      bnEpsilon: BN_EPSILON,
      bnMovingAverageUpdate: BN_MOVING_AVERAGE_UPDATE,
    },
    weightsManifest: [{ paths: [WEIGHTS_BIN], weights: specs }],
  };
  return { modelJson, weightsBin: data };
}

/** Rebuilds a model from artifact contents written by {@link serializeResNet}. */
export function deserializeResNet(tf: TF, modelJson: ResNetModelJson, weightsBin: Uint8Array): ResNet {
  const { topology } = modelJson;
  if (modelJson.format !== ARCHITECTURE || topology.arch !== ARCHITECTURE) {
    throw new Error(`model.json: unsupported format ${String(modelJson.format)}`);
  }
  const config: ResNetConfig = {
    inputShape: [topology.inputShape[0], topology.inputShape[1], topology.inputShape[2]],
    blocksPerSection: topology.blocksPerSection,
    classes: topology.classes,
  };
  const specs = modelJson.weightsManifest.flatMap((group) => group.weights);
  const decoded = decodeNamedTensors(tf, specs, weightsBin);
  try {
    const model = createZeroResNet(tf, config);
    try {
      assignVariables(model, decoded);
    } catch (error) {
      model.dispose();
      throw error;
    }
    return model;
  } finally {
    for (const t of decoded.values()) t.dispose();
  }
}

/** Saves model.json and weights.bin into `dir` (created if needed); weights first, model.json last. */
export async function saveResNet(model: ResNet, dir: string): Promise<void> {
  const { modelJson, weightsBin } = await serializeResNet(model);
  await fs.mkdir(dir, { recursive: true });
  await writeFileAtomic(path.join(dir, WEIGHTS_BIN), weightsBin);
  await writeFileAtomic(path.join(dir, MODEL_JSON), JSON.stringify(modelJson));
}

/** Loads a model saved by {@link saveResNet}. */
export async function loadResNet(tf: TF, dir: string): Promise<ResNet> {
  const modelJson = JSON.parse(await fs.readFile(path.join(dir, MODEL_JSON), "utf8")) as ResNetModelJson;
  const paths = modelJson.weightsManifest.flatMap((group) => group.paths);
  const parts = await Promise.all(paths.map((p) => fs.readFile(path.join(dir, p))));
  return deserializeResNet(tf, modelJson, new Uint8Array(Buffer.concat(parts)));
}
