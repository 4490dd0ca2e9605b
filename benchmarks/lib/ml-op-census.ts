/**
 * Where the time of a tfjs-node computation goes: every TensorFlow op that tfjs-node executes passes through its
 * binding's `executeOp`, so wrapping that one function counts and times every native op (including TensorFlow's
 * eager dispatch and the N-API crossing). Wall time minus that is JavaScript: tfjs's tape and scopes, gradient
 * bookkeeping, building attributes, and uploading constants.
 */
import type { TF } from "../../science/resnet.ts";

/** Outputs of at least this many elements are "large" (activation-sized); smaller ones parameter- or scalar-sized. */
export const LARGE_OUTPUT_ELEMENTS = 16_384;

export interface OpStats {
  calls: number;
  ms: number;
}

export interface OpCensus {
  readonly wallMs: number;
  /** Per TensorFlow op name, split by output size. */
  readonly large: Record<string, OpStats>;
  readonly small: Record<string, OpStats>;
  readonly largeOps: OpStats;
  readonly smallOps: OpStats;
  /** Wall time not spent inside executeOp. */
  readonly javascriptMs: number;
}

interface Binding {
  executeOp(name: string, attrs: unknown, ids: number[], outputs: number): Array<{ shape: number[] }>;
}

/** Called after every native op with its name, its time and the element count of its largest output. */
export type OpListener = (name: string, ms: number, outputElements: number) => void;

/**
 * Routes every native op of the tfjs-node backend through `listener` until the returned function is called.
 * The binding object is frozen, so the backend is handed a copy whose executeOp is wrapped.
 */
export function interceptOps(tf: TF, listener: OpListener): () => void {
  const backend = tf.backend() as unknown as { binding?: Binding | Record<string, unknown> };
  const binding = backend.binding as Binding | undefined;
  if (binding === undefined)
    throw new Error(`intercepting ops needs the tfjs-node backend, active: ${tf.getBackend()}`);
  const standIn: Record<string, unknown> = {};
  for (const name of Object.getOwnPropertyNames(binding)) {
    const value: unknown = Reflect.get(binding, name);
    standIn[name] = typeof value === "function" ? value.bind(binding) : value;
  }
  standIn["executeOp"] = ((name, attrs, ids, outputs) => {
    const t0 = performance.now();
    const result = binding.executeOp(name, attrs, ids, outputs);
    const ms = performance.now() - t0;
    listener(name, ms, Math.max(0, ...result.map((m) => m.shape.reduce((a, b) => a * b, 1))));
    return result;
  }) satisfies Binding["executeOp"];
  backend.binding = standIn;
  return () => {
    backend.binding = binding;
  };
}

/** Runs `f` once with every native op timed. Needs the tfjs-node backend. */
export function opCensus(tf: TF, f: () => void): OpCensus {
  const large: Record<string, OpStats> = {};
  const small: Record<string, OpStats> = {};
  const restore = interceptOps(tf, (name, ms, elements) => {
    const table = elements >= LARGE_OUTPUT_ELEMENTS ? large : small;
    const entry = (table[name] ??= { calls: 0, ms: 0 });
    entry.calls++;
    entry.ms += ms;
  });
  const t0 = performance.now();
  try {
    f();
  } finally {
    restore();
  }
  const wallMs = performance.now() - t0;
  const total = (table: Record<string, OpStats>): OpStats =>
    Object.values(table).reduce((a, b) => ({ calls: a.calls + b.calls, ms: a.ms + b.ms }), { calls: 0, ms: 0 });
  const largeOps = total(large);
  const smallOps = total(small);
  return { wallMs, large, small, largeOps, smallOps, javascriptMs: wallMs - largeOps.ms - smallOps.ms };
}

/** The `top` most expensive op names of a census (large and small merged), for printing. */
export function topOps(census: OpCensus, top = 12): Array<{ name: string; calls: number; ms: number }> {
  const merged = new Map<string, OpStats>();
  for (const table of [census.large, census.small]) {
    for (const [name, s] of Object.entries(table)) {
      const e = merged.get(name) ?? { calls: 0, ms: 0 };
      merged.set(name, { calls: e.calls + s.calls, ms: e.ms + s.ms });
    }
  }
  return [...merged]
    .map(([name, s]) => ({ name, ...s }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top);
}
