/** How plans and sizes are shown by run, status and inspect. */
import type { Dag } from "../graph.ts";
import { shortKey, type Plan, type PlanEntry } from "../plan.ts";

/**
 * One line per node in DAG order: status, id, and the key (cached, remote) or the reason (to run, pending). `labels`
 * renames statuses for a command's own words (status says "stale" for "run").
 */
export const planLines = <C, R>(
  dag: Dag<C, R>,
  plan: Plan,
  labels: Partial<Record<PlanEntry["status"], string>> = {},
): string[] => {
  const width = Math.min(48, Math.max(...dag.order.map((id) => id.length)));
  return dag.order.map((id) => {
    const e = plan.entries.get(id)!;
    const detail = e.status === "cached" || e.status === "remote" ? shortKey(e.key) : e.reason;
    return `  ${(labels[e.status] ?? e.status).padEnd(8)} ${id.padEnd(width)}  ${detail}`;
  });
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
