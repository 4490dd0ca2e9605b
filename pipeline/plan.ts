/**
 * Planning: which nodes are cached, which must run and why.
 *
 * A node's key hashes its stage name and version, its canonical parameters and the content hashes of its input
 * artifacts. Keys of nodes below a node that must run are unknown until it has run (its output may even come out
 * byte-identical, in which case they stay cached: early cutoff), so such nodes are "pending".
 *
 * {@link deriveKey} is the one place a key is derived from upstream manifests; the planner ({@link planDag}: run,
 * status, gc, lock and replay's reference) and the executor both use it.
 */
import { Effect } from "effect";
import { Store, type StoreError } from "../cache/service.ts";
import type { Manifest } from "../cache/store.ts";
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

/**
 * The key of `node` and its input bindings, from its upstream nodes' manifests (`upstream(depId)`); when one has no
 * manifest (it will run, failed, or is not cached), `waitingOn` names the first such dependency instead.
 */
export const deriveKey = <C, R>(
  dag: Dag<C, R>,
  node: DagNode<C, R>,
  upstream: (depId: string) => Manifest | undefined,
):
  | { readonly key: string; readonly inputs: Readonly<Record<string, InputBinding>> }
  | { readonly waitingOn: string } => {
  const inputs: Record<string, InputBinding> = {};
  for (const [input, depId] of Object.entries(node.deps)) {
    const manifest = upstream(depId);
    if (manifest === undefined) return { waitingOn: depId };
    inputs[input] = bindingOf(manifest, dag.nodes.get(depId)!.stage.outputs);
  }
  return { key: nodeKey(node, inputs), inputs };
};

export type PlanEntry =
  | { readonly status: "cached"; readonly key: string; readonly manifest: Manifest }
  /** Not in the local cache but in the remote one (only with PlanOptions.remote): a run fetches it. */
  | { readonly status: "remote"; readonly key: string; readonly manifest: Manifest }
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
  /**
   * "verified" (default): an artifact counts as cached once its files are verified (a corrupt one is quarantined).
   * "recorded": follow the stored manifests as they are, verifying, moving and explaining nothing (replay compares
   * against the cache as it is, corrupt files included).
   */
  readonly trust?: "verified" | "recorded";
  /** Ask the remote cache (if one is in use) for each node missing locally, and plan those it has as "remote". */
  readonly remote?: boolean;
}

/** Computes the plan in DAG order. Reads manifests only; artifact bytes are re-hashed only when their stat changed. */
export const planDag = <C, R>(dag: Dag<C, R>, options: PlanOptions = {}): Effect.Effect<Plan, StoreError, Store> =>
  Effect.gen(function* () {
    const store = yield* Store;
    const entries = new Map<string, PlanEntry>();
    const corrupt: Array<{ nodeId: string; reason: string }> = [];
    const cachedManifest = (id: string) => {
      const entry = entries.get(id);
      return entry?.status === "cached" || entry?.status === "remote" ? entry.manifest : undefined;
    };
    for (const id of dag.order) {
      const node = dag.nodes.get(id)!;
      const derived = deriveKey(dag, node, cachedManifest);
      if ("waitingOn" in derived) {
        entries.set(id, { status: "pending", reason: `upstream ${derived.waitingOn} will run` });
        continue;
      }
      const { key, inputs } = derived;
      if (options.trust === "recorded") {
        const manifest = yield* store.manifest(key);
        entries.set(
          id,
          manifest === undefined
            ? { status: "run", key, reason: "not in the cache" }
            : { status: "cached", key, manifest },
        );
        continue;
      }
      const forced = options.force?.has(node.stage.name) === true;
      const found = yield* store.lookup(key);
      if (found.status === "hit" && !forced) {
        entries.set(id, { status: "cached", key, manifest: found.manifest });
        continue;
      }
      if (found.status === "corrupt") corrupt.push({ nodeId: id, reason: found.reason });
      const remote = options.remote === true && !forced ? yield* store.remoteEntry(key) : undefined;
      if (remote !== undefined) {
        entries.set(id, { status: "remote", key, manifest: remote });
        continue;
      }
      const reason = forced
        ? "forced (--force)"
        : found.status === "corrupt"
          ? `cached artifact is corrupt (${found.reason})`
          : yield* explainMiss(node, inputs);
      entries.set(id, { status: "run", key, reason });
    }
    return { entries, corrupt } satisfies Plan;
  });

/** Says what differs from the last artifact this node produced: a parameter, the stage version or an input. */
export const explainMiss = <C, R>(
  node: DagNode<C, R>,
  inputs: Readonly<Record<string, InputBinding>>,
): Effect.Effect<string, StoreError, Store> =>
  Effect.gen(function* () {
    const store = yield* Store;
    const ref = yield* store.readRef(node.stage.name, refDigest(node.id));
    if (ref === undefined) return "never run";
    const previous = yield* store.manifest(ref.key);
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
  });

/** Dotted paths whose values differ between two JSON values, each as `path a -> b`. */
export const diffKeys = (before: unknown, after: unknown, path = ""): string[] => {
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
  const counts = { cached: 0, remote: 0, run: 0, pending: 0 };
  for (const e of plan.entries.values()) counts[e.status]++;
  return counts;
};

export const shortKey = (key: string): string => key.slice(0, 12);
