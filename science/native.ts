/**
 * Direct calls into native TensorFlow (tfjs-node / tfjs-node-gpu, backend name "tensorflow") for the few kernels
 * TensorFlow.js does not expose as one op. Callers keep a composed-op path for the pure-JS backend.
 */
import type * as tfjs from "@tensorflow/tfjs";
import type { TF } from "./resnet.ts";

/** The parts of the tfjs-node backend (native TensorFlow, CPU or GPU) used to run TensorFlow ops by name. */
export interface NativeBackend {
  readonly binding: {
    readonly TF_FLOAT: number;
    readonly TF_INT32: number;
    readonly TF_ATTR_TYPE: number;
    readonly TF_ATTR_FLOAT: number;
    readonly TF_ATTR_STRING: number;
    readonly TF_ATTR_BOOL: number;
  };
  executeSingleOutput(name: string, attrs: unknown[], inputs: tfjs.Tensor[]): tfjs.Tensor;
  executeMultipleOutputs(name: string, attrs: unknown[], inputs: tfjs.Tensor[], outputs: number): tfjs.Tensor[];
}

/** The active backend when it is native TensorFlow, else undefined. */
export function nativeBackend(tf: TF): NativeBackend | undefined {
  const backend = tf.backend() as unknown as Partial<NativeBackend>;
  return tf.getBackend() === "tensorflow" &&
    typeof backend.executeMultipleOutputs === "function" &&
    backend.binding !== undefined
    ? (backend as NativeBackend)
    : undefined;
}

/** The reduction axes [1, 2, 3] as an int32 tensor, made once per backend (kept out of every tidy scope). */
let imageAxes: { readonly backend: NativeBackend; readonly tensor: tfjs.Tensor1D } | undefined;

/**
 * Per-image L2 norm over all H*W*C values of x [N, H, W, C]: [N]. On native TensorFlow one EuclideanNorm kernel
 * (a single pass over x, 2-3x faster than square + sum); elsewhere sqrt(sum(square(x))).
 */
export function imageNorms(tf: TF, x: tfjs.Tensor4D): tfjs.Tensor1D {
  const native = nativeBackend(tf);
  if (native === undefined) return tf.tidy(() => tf.sqrt(tf.sum(tf.square(x), [1, 2, 3])) as tfjs.Tensor1D);
  if (imageAxes?.backend !== native || imageAxes.tensor.isDisposed) {
    imageAxes = { backend: native, tensor: tf.keep(tf.tensor1d([1, 2, 3], "int32")) };
  }
  const b = native.binding;
  return native.executeSingleOutput(
    "EuclideanNorm",
    [
      { name: "keep_dims", type: b.TF_ATTR_BOOL, value: false },
      { name: "T", type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
      { name: "Tidx", type: b.TF_ATTR_TYPE, value: b.TF_INT32 },
    ],
    [x, imageAxes.tensor],
  ) as tfjs.Tensor1D;
}
