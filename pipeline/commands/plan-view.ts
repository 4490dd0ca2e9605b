/** How plans and sizes are shown by run, status and inspect. */
import type { Dag } from "../graph.ts";
import { shortKey, type Plan, type PlanEntry } from "../plan.ts";
import { humanDuration } from "../progress.ts";
import type { NodePreview } from "../stage.ts";

/**
 * One line per node in DAG order: status, id, and the key (cached, remote) or the reason (to run, pending).
 * `labels` renames statuses for a command's own words (status says "stale" for "run"); with `preview`, a node to
 * compute also shows its work and estimated time, as its stage describes them.
 */
export const planLines = <C, R>(
  dag: Dag<C, R>,
  plan: Plan,
  options: { readonly labels?: Partial<Record<PlanEntry["status"], string>>; readonly preview?: boolean } = {},
): string[] => {
  const width = Math.min(48, Math.max(...dag.order.map((id) => id.length)));
  return dag.order.map((id) => {
    const e = plan.entries.get(id)!;
    const detail = e.status === "cached" || e.status === "remote" ? shortKey(e.key) : e.reason;
    const preview = options.preview === true && e.status !== "cached" ? previewText(dag, id) : "";
    return `  ${(options.labels?.[e.status] ?? e.status).padEnd(8)} ${id.padEnd(width)}  ${detail}${preview}`;
  });
};

const previewOf = <C, R>(dag: Dag<C, R>, id: string): NodePreview | undefined => {
  const node = dag.nodes.get(id)!;
  return node.stage.preview?.(node.params);
};

const previewText = <C, R>(dag: Dag<C, R>, id: string): string => {
  const p = previewOf(dag, id);
  if (p === undefined) return "";
  return ` · ${p.work}${p.seconds === undefined ? "" : `, ~${humanDuration(p.seconds * 1000)}`}`;
};

/**
 * The dry run's closing line: the estimated time of the nodes to compute whose stage gives one (one at a time, as
 * measured), and how many to compute have no estimate; "" when no node to compute has one.
 */
export const estimateLine = <C, R>(dag: Dag<C, R>, plan: Plan): string => {
  const toCompute = dag.order.filter((id) => plan.entries.get(id)!.status !== "cached");
  const seconds = toCompute.map((id) => previewOf(dag, id)?.seconds);
  const known = seconds.filter((s): s is number => s !== undefined);
  if (known.length === 0) return "";
  const total = known.reduce((a, b) => a + b, 0);
  const unknown = seconds.length - known.length;
  const rest = unknown === 0 ? "" : ` (+ ${unknown} quick node${unknown === 1 ? "" : "s"} without an estimate)`;
  return (
    `estimated: ${humanDuration(total * 1000)} for ${known.length} node${known.length === 1 ? "" : "s"} ` +
    `one at a time, from measured throughput${rest}\n`
  );
};

/** A node's plan entry as JSON (--json of status and of run --dry-run). */
export const planEntryJson = (plan: Plan, id: string) => {
  const e = plan.entries.get(id)!;
  return e.status === "cached" || e.status === "remote"
    ? { status: e.status, key: e.key }
    : e.status === "run"
      ? { status: "run", key: e.key, reason: e.reason }
      : { status: "pending", key: null, reason: e.reason };
};

export const formatBytes = (n: number): string =>
  n < 1024
    ? `${n} B`
    : n < 1024 ** 2
      ? `${(n / 1024).toFixed(1)} KiB`
      : n < 1024 ** 3
        ? `${(n / 1024 ** 2).toFixed(1)} MiB`
        : `${(n / 1024 ** 3).toFixed(2)} GiB`;
