/**
 * What gc keeps (its roots): every key the current configuration reaches (all targets), every key pinned by a lock
 * file of the project, and every key of the last N run records on this cache. The keys live runs hold come on top,
 * from their leases (cache/leases.ts), read under the gc mutex together with the run records.
 */
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import * as path from "node:path";
import { Effect } from "effect";
import type { Store, StoreError } from "../cache/service.ts";
import type { UsageError } from "./commands/errors.ts";
import type { Dag } from "./graph.ts";
import { canonicalJson } from "./hash.ts";
import { planDag } from "./plan.ts";
import { readLockFile } from "./replay/lockfile.ts";
import { runRecords } from "./runs.ts";

/** One kind of root and the keys it reaches. */
export interface RootSet {
  /** e.g. "the current configuration", "lock pipeline.lock.json", "run 20250101T120000000Z-ab12cd34 (all)" */
  readonly name: string;
  readonly keys: ReadonlySet<string>;
}

/** Every key of the current configuration's graph whose key is known (cached or not yet computed). */
export const currentConfigurationRoots = <C, R>(dag: Dag<C, R>): Effect.Effect<RootSet, StoreError, Store> =>
  Effect.map(planDag(dag, { trust: "recorded" }), (plan) => ({
    name: "the current configuration",
    keys: new Set([...plan.entries.values()].flatMap((e) => (e.status === "pending" ? [] : [e.key]))),
  }));

/** The project's lock files: `*.lock.json` files git knows of (tracked or not ignored), and pipeline*.lock.json. */
export const projectLockFiles = (root: string): string[] => {
  const found = new Set<string>();
  try {
    const listed = execFileSync(
      "git",
      ["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "*.lock.json"],
      { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
    );
    for (const file of listed.split("\0")) if (file !== "") found.add(path.join(root, file));
  } catch {
    // not a git work tree (or no git): the files at the root below are all there is
  }
  for (const name of readdirSync(root)) if (/^pipeline.*\.lock\.json$/.test(name)) found.add(path.join(root, name));
  return [...found].sort();
};

/** The keys each lock file pins; a file that is not a readable lock is reported through `skipped` and left out. */
export const lockRoots = (
  files: ReadonlyArray<string>,
  root: string,
  skipped: (file: string, why: UsageError) => void,
): Effect.Effect<RootSet[]> =>
  Effect.forEach(files, (file) =>
    readLockFile(file).pipe(
      Effect.map((lock): RootSet[] => [
        { name: `lock ${path.relative(root, file)}`, keys: new Set(Object.values(lock.nodes).map((n) => n.key)) },
      ]),
      Effect.catchAll((e) => Effect.sync(() => (skipped(file, e), []))),
    ),
  ).pipe(Effect.map((sets) => sets.flat()));

/**
 * The keys of the last `n` runs on the cache at `cacheRoot` in the project at `root`, counting a run of the same target
 * and configuration as a later one once: rerunning one configuration does not push the others out.
 */
export const recentRunRoots = (root: string, cacheRoot: string, n: number): Effect.Effect<RootSet[]> =>
  Effect.promise(() => runRecords(root, cacheRoot)).pipe(
    Effect.map((runs) => {
      const seen = new Set<string>();
      return runs.filter(({ record }) => {
        const what = canonicalJson({ target: record.target, configuration: record.configSources });
        return !seen.has(what) && seen.add(what);
      });
    }),
    Effect.map((runs) =>
      runs.slice(0, n).map(({ file, record }) => ({
        name: `run ${path.basename(file, ".json")} (${record.target})`,
        keys: new Set(Object.values(record.nodes).filter((k): k is string => k !== null)),
      })),
    ),
  );
