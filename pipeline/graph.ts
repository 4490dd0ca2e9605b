/** Expands stage declarations under a configuration into a DAG of concrete nodes. */
import { Data, Either, Schema } from "effect";
import { canonicalJson, hashValue } from "./hash.ts";
import { formatParseError } from "./config.ts";
import type { AnyStage } from "./stage.ts";
import { didYouMean } from "./suggest.ts";

/** One concrete unit of work: a stage with decoded parameters and its upstream nodes by input name. */
export interface DagNode<C, R> {
  readonly id: string;
  readonly stage: AnyStage<C, R>;
  readonly params: unknown;
  readonly encodedParams: unknown;
  /** sha256 of the canonical encoded parameters. */
  readonly paramsDigest: string;
  readonly deps: Readonly<Record<string, string>>;
}

export interface Dag<C, R> {
  readonly nodes: ReadonlyMap<string, DagNode<C, R>>;
  /** Node ids in a dependency-respecting order (inputs first), deterministic for a given config. */
  readonly order: ReadonlyArray<string>;
  /** The ids the target asked for. */
  readonly targets: ReadonlyArray<string>;
}

/** A target or dependency that does not resolve under the configuration: one line, exit code 2. */
export class GraphError extends Data.TaggedError("GraphError")<{ readonly message: string }> {}

const defaultLabel = (encoded: unknown): string =>
  typeof encoded === "object" && encoded !== null && !Array.isArray(encoded)
    ? Object.entries(encoded as Record<string, unknown>)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : canonicalJson(v)}`)
        .join(",")
    : canonicalJson(encoded);

/** `all` or a stage name; `stage[label]` selects one node of that stage. */
export const buildDag = <C, R>(stages: ReadonlyArray<AnyStage<C, R>>, config: C, target: string): Dag<C, R> => {
  const byName = new Map(stages.map((s) => [s.name, s]));
  const nodes = new Map<string, DagNode<C, R>>();
  const byIdentity = new Map<string, string>();
  const order: string[] = [];
  const visiting = new Set<string>();

  const addNode = (
    stage: AnyStage<C, R>,
    rawParams: unknown,
    encodedInput: boolean,
    path: ReadonlyArray<string>,
  ): string => {
    const encodedParams: unknown = encodedInput ? rawParams : Schema.encodeSync(stage.params)(rawParams);
    // A node is reached once per dependent (every train node feeds its probe, aggregate and report): find it by its
    // encoded parameters before decoding them again, which was most of buildDag's time.
    const identity = `${stage.name}\u0000${canonicalJson(encodedParams)}`;
    const existing = byIdentity.get(identity);
    if (existing !== undefined) return existing;
    let params: unknown = rawParams;
    if (encodedInput) {
      const decoded = Schema.decodeUnknownEither(stage.params)(rawParams);
      if (Either.isLeft(decoded)) {
        throw new GraphError({
          message: `bad parameters for ${stage.name} (from ${path.join(" <- ")}): ${formatParseError(decoded.left)}`,
        });
      }
      params = decoded.right;
    }
    const label = stage.label ? stage.label(params) : defaultLabel(encodedParams);
    const id = `${stage.name}[${label}]`;
    if (nodes.has(id) || visiting.has(id)) {
      if (visiting.has(id)) throw new GraphError({ message: `dependency cycle: ${[...path, id].join(" -> ")}` });
      throw new GraphError({ message: `two different parameter sets of ${stage.name} share the label "${label}"` });
    }
    visiting.add(id);
    const deps: Record<string, string> = {};
    for (const [input, dep] of Object.entries(stage.inputs(params, config))) {
      const upstream = byName.get(dep.stage);
      if (upstream === undefined) throw new GraphError({ message: `${id} depends on unknown stage "${dep.stage}"` });
      deps[input] = addNode(upstream, dep.params, true, [...path, id]);
    }
    visiting.delete(id);
    nodes.set(id, { id, stage, params, encodedParams, paramsDigest: hashValue(encodedParams), deps });
    byIdentity.set(identity, id);
    order.push(id);
    return id;
  };

  const selected = selectTargetStages(stages, target);
  const targets: string[] = [];
  // The ids of the selected stage's nodes that a stage[label] target did not match: the candidates of a typo.
  const otherIds: string[] = [];
  for (const { stage, label } of selected) {
    for (const params of stage.instances(config)) {
      if (label !== undefined) {
        const own = stage.label ? stage.label(params) : defaultLabel(Schema.encodeSync(stage.params)(params));
        if (own !== label) {
          otherIds.push(`${stage.name}[${own}]`);
          continue;
        }
      }
      targets.push(addNode(stage, params, false, []));
    }
  }
  if (targets.length === 0) {
    const message = `target "${target}" selects no node under this configuration${didYouMean(target, otherIds)}`;
    throw new GraphError({ message });
  }
  return { nodes, order, targets };
};

const selectTargetStages = <C, R>(
  stages: ReadonlyArray<AnyStage<C, R>>,
  target: string,
): Array<{ stage: AnyStage<C, R>; label?: string }> => {
  if (target === "all") return stages.map((stage) => ({ stage }));
  const m = /^([^[\]]+)(?:\[(.*)\])?$/.exec(target);
  const stage = m ? stages.find((s) => s.name === m[1]) : undefined;
  if (!m || stage === undefined) {
    const names = stages.map((s) => s.name);
    // A node id with a mistyped stage name keeps its label in the suggestion: fti[mnist] -> fit[mnist].
    const near =
      m === null
        ? ""
        : m[2] === undefined
          ? didYouMean(target, [...names, "all"])
          : didYouMean(m[1]!, names, (name) => `${name}[${m[2]}]`);
    throw new GraphError({ message: `unknown target "${target}"${near || ` (stages: ${names.join(", ")}, or all)`}` });
  }
  return m[2] === undefined ? [{ stage }] : [{ stage, label: m[2] }];
};

/** The nodes reachable upstream from the given ids (inclusive), in DAG order. */
export const upstreamClosure = <C, R>(dag: Dag<C, R>, ids: Iterable<string>): ReadonlyArray<string> => {
  const keep = new Set<string>();
  const visit = (id: string) => {
    if (keep.has(id)) return;
    keep.add(id);
    for (const dep of Object.values(dag.nodes.get(id)!.deps)) visit(dep);
  };
  for (const id of ids) visit(id);
  return dag.order.filter((id) => keep.has(id));
};
