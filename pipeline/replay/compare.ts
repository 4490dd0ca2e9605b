/**
 * Replay's comparison: each replayed node against its reference, the lock file's hashes or the current cache's files.
 *
 * Comparing with the current cache never trusts (or quarantines) what is there: the reference chain is followed through
 * the stored manifests (the planner's "recorded" mode), and each reference artifact is compared by re-hashing its
 * file's bytes, so a cached file that was changed on disk after it was committed (a flipped byte) shows up as a
 * mismatch instead of being recomputed away.
 */
import { join } from "node:path";
import { Effect } from "effect";
import { Store, type StoreError } from "../../cache/service.ts";
import { sha256File } from "../../cache/store.ts";
import type { NodeResult } from "../executor/dag.ts";
import type { Dag } from "../graph.ts";
import { planDag, shortKey } from "../plan.ts";
import type { OutputSpec } from "../stage.ts";
import { isVolatile, type LockFile } from "./lockfile.ts";
import { diffParquet } from "./parquet-diff.ts";

/** One artifact as the reference knows it. */
interface ReferenceArtifact {
  /** The sha256 the replayed artifact must have. */
  readonly sha256: string;
  /** The reference file itself (current cache only), to diff tables against. */
  readonly path?: string;
  /** The sha256 its manifest recorded, when the file's bytes no longer have it (a corrupt cache file). */
  readonly recordedSha256?: string;
}

/** The sha256 of a reference file that does not exist. */
const MISSING = "missing";

export interface ReferenceNode {
  readonly key: string;
  readonly artifacts: Readonly<Record<string, ReferenceArtifact>>;
}

export const lockReference = (lock: LockFile): ReadonlyMap<string, ReferenceNode> =>
  new Map(
    Object.entries(lock.nodes).map(([id, n]) => [
      id,
      {
        key: n.key,
        artifacts: Object.fromEntries(Object.entries(n.artifacts).map(([name, sha256]) => [name, { sha256 }])),
      },
    ]),
  );

/** The current cache's artifacts for the DAG as recorded; each artifact's sha256 is that of its file's bytes now. */
export const cacheReference = <C, R>(
  dag: Dag<C, R>,
): Effect.Effect<ReadonlyMap<string, ReferenceNode>, StoreError, Store> =>
  Effect.gen(function* () {
    const store = yield* Store;
    const plan = yield* planDag(dag, { trust: "recorded" });
    const reference = new Map<string, ReferenceNode>();
    for (const id of dag.order) {
      const entry = plan.entries.get(id)!;
      if (entry.status !== "cached") continue;
      const outputs = dag.nodes.get(id)!.stage.outputs;
      const artifacts: Record<string, ReferenceArtifact> = {};
      for (const [name, a] of Object.entries(entry.manifest.artifacts)) {
        if (isVolatile(outputs[name])) continue;
        const path = join(store.artifactDir(entry.key), a.file);
        const actual = yield* Effect.promise(() => sha256File(path).catch(() => MISSING));
        artifacts[name] =
          actual === a.sha256 ? { sha256: actual, path } : { sha256: actual, path, recordedSha256: a.sha256 };
      }
      reference.set(id, { key: entry.key, artifacts });
    }
    return reference;
  });

export type ReplayStatus = "match" | "MISMATCH" | "no reference" | "failed";

export interface NodeComparison {
  readonly id: string;
  readonly status: ReplayStatus;
  /** The replayed key (absent when the node could not run). */
  readonly key: string | null;
  readonly referenceKey: string | null;
  /** One entry per difference; `artifact` is null for differences of the node as a whole. */
  readonly differences: ReadonlyArray<{ readonly artifact: string | null; readonly detail: string }>;
}

const comparedNames = (outputs: Readonly<Record<string, OutputSpec>>, a: Iterable<string>, b: Iterable<string>) =>
  [...new Set([...a, ...b])].filter((name) => !isVolatile(outputs[name])).sort();

/** Compares one replayed node with its reference; `mismatched` holds the ids of nodes already found to differ. */
export const compareNode = async <C, R>(
  dag: Dag<C, R>,
  result: NodeResult,
  reference: ReferenceNode | undefined,
  referenceName: "lock" | "cache",
  mismatched: ReadonlySet<string>,
): Promise<NodeComparison> => {
  const node = dag.nodes.get(result.id)!;
  const base = { id: result.id, key: result.key ?? null, referenceKey: reference?.key ?? null };
  if (result.status === "failed")
    return { ...base, status: "failed", differences: [{ artifact: null, detail: result.error ?? "failed" }] };
  if (result.status === "skipped") {
    return { ...base, status: "failed", differences: [{ artifact: null, detail: `not run: ${result.reason}` }] };
  }
  if (reference === undefined) return { ...base, status: "no reference", differences: [] };
  const differences: Array<{ artifact: string | null; detail: string }> = [];
  if (reference.key !== result.key) {
    const upstreamDiffers = Object.values(node.deps).some((dep) => mismatched.has(dep));
    differences.push({
      artifact: null,
      detail: upstreamDiffers
        ? "key differs: an upstream artifact differs"
        : "key differs: configuration or code changed",
    });
  }
  const replayed = result.manifest!.artifacts;
  for (const name of comparedNames(node.stage.outputs, Object.keys(replayed), Object.keys(reference.artifacts))) {
    const mine = replayed[name];
    const theirs = reference.artifacts[name];
    if (mine === undefined || theirs === undefined) {
      differences.push({
        artifact: name,
        detail: `present only in the ${mine === undefined ? referenceName : "replay"}`,
      });
      continue;
    }
    if (theirs.sha256 === MISSING) {
      differences.push({ artifact: name, detail: "the cached file is missing" });
      continue;
    }
    if (theirs.recordedSha256 !== undefined) {
      const detail = `the cached file no longer has its manifest's sha256 ${shortKey(theirs.recordedSha256)} (changed on disk)`;
      differences.push({ artifact: name, detail });
    }
    if (mine.sha256 === theirs.sha256) continue;
    const replayPath = join(result.dir!, mine.file);
    let detail = `bytes differ (sha256 ${referenceName} ${shortKey(theirs.sha256)} vs replay ${shortKey(mine.sha256)})`;
    if (theirs.path !== undefined && mine.kind === "table") {
      try {
        detail =
          (await diffParquet(theirs.path, replayPath, [referenceName, "replay"])) ??
          "bytes differ, rows and values identical";
      } catch (e) {
        detail = `bytes differ; the cached table is unreadable (${(e as Error).message.split("\n")[0]})`;
      }
    }
    differences.push({ artifact: name, detail });
  }
  return { ...base, status: differences.length === 0 ? "match" : "MISMATCH", differences };
};

/** The per-node table: status, node id, key, then one line per difference. */
export const renderComparisons = (comparisons: ReadonlyArray<NodeComparison>, referenceName: string): string => {
  const width = Math.min(48, Math.max(4, ...comparisons.map((c) => c.id.length)));
  const lines = [`  ${"status".padEnd(12)} ${"node".padEnd(width)}  details (${referenceName} vs replay)`];
  for (const c of comparisons) {
    const [first, ...rest] = c.differences.map((d) => (d.artifact === null ? d.detail : `${d.artifact}: ${d.detail}`));
    lines.push(
      `  ${c.status.padEnd(12)} ${c.id.padEnd(width)}  ${first ?? (c.key === null ? "" : shortKey(c.key))}`.trimEnd(),
    );
    for (const line of rest) lines.push(`  ${"".padEnd(12)} ${"".padEnd(width)}  ${line}`);
  }
  return lines.join("\n");
};
