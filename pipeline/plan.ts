/**
 * Planning: which nodes are cached, which must run and why.
 *
 * A node's key hashes its stage name and version, its canonical parameters and the content hashes of its input
 * artifacts. Keys of nodes below a node that must run are unknown until it has run (its output may even come out
 * byte-identical, in which case they stay cached: early cutoff), so such nodes are "pending".
 */
import type { ArtifactStore, Manifest } from "../cache/store.ts";
import type { Dag, DagNode } from "./graph.ts";
import { canonicalJson, hashValue, sha256Hex } from "./hash.ts";
import type { OutputSpec } from "./stage.ts";

/** Bumped when the key derivation itself changes. */
const KEY_FORMAT = "pipeline-key/1";

export interface InputBinding {
  readonly key: string;
  readonly nodeId: string;
  /** artifact name -> sha256 of its bytes */
  readonly artifacts: Readonly<Record<string, string>>;
}

export const nodeKey = <C, R>(node: DagNode<C, R>, inputs: Readonly<Record<string, InputBinding>>): string =>
  hashValue({
    format: KEY_FORMAT,
    stage: node.stage.name,
    version: node.stage.version,
    params: node.encodedParams,
    inputs: Object.fromEntries(Object.entries(inputs).map(([name, b]) => [name, b.artifacts])),
  });

/** Refs are filed by node id, so a parameter change of the same node can be explained. */
export const refDigest = (nodeId: string): string => sha256Hex(nodeId);

/** What a downstream key sees of an upstream artifact: the content hashes of its non-volatile outputs. */
export const bindingOf = (manifest: Manifest, outputs: Readonly<Record<string, OutputSpec>>): InputBinding => ({
  key: manifest.key,
  nodeId: manifest.nodeId,
  artifacts: Object.fromEntries(
    Object.entries(manifest.artifacts)
      .filter(([name]) => {
        const spec = outputs[name];
        return !(spec?.kind === "table" && spec.volatile === true);
      })
      .map(([name, a]) => [name, a.sha256]),
  ),
});

export type PlanEntry =
  | { readonly status: "cached"; readonly key: string; readonly manifest: Manifest }
  | { readonly status: "run"; readonly key: string; readonly reason: string }
  | { readonly status: "pending"; readonly reason: string };

export interface Plan {
  readonly entries: ReadonlyMap<string, PlanEntry>;
  /** Corrupt artifacts found (and quarantined) while planning. */
  readonly corrupt: ReadonlyArray<{ readonly nodeId: string; readonly reason: string }>;
}

export interface PlanOptions {
  /** Stage names whose nodes run even when cached. */
  readonly force?: ReadonlySet<string>;
}

/** Computes the plan in DAG order. Reads manifests only; artifact bytes are re-hashed only when their stat changed. */
export const planDag = async <C, R>(dag: Dag<C, R>, store: ArtifactStore, options: PlanOptions = {}): Promise<Plan> => {
  const entries = new Map<string, PlanEntry>();
  const corrupt: Array<{ nodeId: string; reason: string }> = [];
  for (const id of dag.order) {
    const node = dag.nodes.get(id)!;
    const inputs: Record<string, InputBinding> = {};
    let waitingOn: string | undefined;
    for (const [input, depId] of Object.entries(node.deps)) {
      const dep = entries.get(depId)!;
      if (dep.status !== "cached") {
        waitingOn ??= depId;
        continue;
      }
      inputs[input] = bindingOf(dep.manifest, dag.nodes.get(depId)!.stage.outputs);
    }
    if (waitingOn !== undefined) {
      entries.set(id, { status: "pending", reason: `upstream ${waitingOn} will run` });
      continue;
    }
    const key = nodeKey(node, inputs);
    const forced = options.force?.has(node.stage.name) === true;
    const found = await store.lookup(key);
    if (found.status === "hit" && !forced) {
      entries.set(id, { status: "cached", key, manifest: found.manifest });
      continue;
    }
    if (found.status === "corrupt") corrupt.push({ nodeId: id, reason: found.reason });
    const reason = forced
      ? "forced (--force)"
      : found.status === "corrupt"
        ? `cached artifact is corrupt (${found.reason})`
        : await explainMiss(node, inputs, store);
    entries.set(id, { status: "run", key, reason });
  }
  return { entries, corrupt };
};

/** Says what differs from the last artifact this node produced: a parameter, the stage version or an input. */
export const explainMiss = async <C, R>(
  node: DagNode<C, R>,
  inputs: Readonly<Record<string, InputBinding>>,
  store: ArtifactStore,
): Promise<string> => {
  const ref = await store.readRef(node.stage.name, refDigest(node.id));
  if (ref === undefined) return "never run";
  const previous = await store.manifest(ref.key);
  if (previous === undefined) return "its last artifact was removed";
  if (previous.version !== node.stage.version) {
    return `stage version changed (${previous.version} -> ${node.stage.version})`;
  }
  const changedParams = diffKeys(previous.params, node.encodedParams);
  if (changedParams.length > 0) return `parameter changed: ${changedParams.join(", ")}`;
  const changedInputs = Object.entries(inputs)
    .filter(([name, b]) => canonicalJson(previous.inputs[name]?.artifacts ?? null) !== canonicalJson(b.artifacts))
    .map(([name, b]) => `${name} (${b.nodeId})`);
  const removedInputs = Object.keys(previous.inputs).filter((name) => !(name in inputs));
  if (changedInputs.length > 0 || removedInputs.length > 0) {
    return `input changed: ${[...changedInputs, ...removedInputs.map((n) => `${n} removed`)].join(", ")}`;
  }
  return "its last artifact was removed";
};

/** Dotted paths whose values differ between two JSON values, each as `path a -> b`. */
const diffKeys = (before: unknown, after: unknown, path = ""): string[] => {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (isObj(before) && isObj(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => diffKeys(before[k], after[k], path === "" ? k : `${path}.${k}`));
  }
  const a = before === undefined ? "unset" : canonicalJson(before);
  const b = after === undefined ? "unset" : canonicalJson(after);
  return a === b ? [] : [`${path} ${a} -> ${b}`];
};

export const planCounts = (plan: Plan) => {
  const counts = { cached: 0, run: 0, pending: 0 };
  for (const e of plan.entries.values()) counts[e.status]++;
  return counts;
};

export const shortKey = (key: string): string => key.slice(0, 12);

export { hashValue };
