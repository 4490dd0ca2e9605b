/**
 * `pipeline gc [--force] [--keep-runs N] [--dry-run]`: lists, by node and size, the artifacts nothing keeps, and
 * removes them only with --force (or after a y/N question in a terminal). Kept: whatever the current configuration,
 * a lock file of the project or one of the last N runs reaches, and every key a live run holds (pipeline/gc-roots.ts,
 * cache/leases.ts). Checkpoint scratch of dead runs is listed too and removed with the rest, except that of a node a
 * root still reaches, which a rerun resumes from.
 */
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import * as path from "node:path";
import { createInterface } from "node:readline/promises";
import { Effect } from "effect";
import { diskBytes, ifExists } from "../../cache/fsutil.ts";
import { entryPath } from "../../cache/layout.ts";
import { leasedKeys, withGcMutex } from "../../cache/leases.ts";
import { Store, type StoreService } from "../../cache/service.ts";
import { isKey, type GcResult, type Manifest } from "../../cache/store.ts";
import { currentConfigurationRoots, lockRoots, projectLockFiles, recentRunRoots, type RootSet } from "../gc-roots.ts";
import { buildDag } from "../graph.ts";
import { shortKey } from "../plan.ts";
import { runRecords } from "../runs.ts";
import { positiveInt } from "./args.ts";
import { configFromFlags, defineCommand, openCache, type CommandContext } from "./context.ts";
import { attempt, type UserError } from "./errors.ts";
import { formatBytes } from "./plan-view.ts";

const FLAGS = {
  force: { type: "boolean" },
  "dry-run": { type: "boolean" },
  "keep-runs": { type: "string" },
} as const;

type GcContext<C, R> = CommandContext<C, R, typeof FLAGS>;

const DEFAULT_KEEP_RUNS = 5;

export const gc = defineCommand({
  name: "gc",
  flags: FLAGS,
  store: (flags) => (flags.force && !flags["dry-run"] ? "write" : "read"),
  run: (ctx) =>
    Effect.gen(function* () {
      const store = yield* Store;
      const keepRuns = yield* positiveInt(ctx.flags["keep-runs"], "--keep-runs", DEFAULT_KEEP_RUNS, true);
      if (!existsSync(store.paths.ac)) {
        ctx.out.write(`nothing to remove: the cache at ${store.paths.root} holds nothing yet\n`);
        return 0;
      }
      const dryRun = ctx.flags["dry-run"];
      if (ctx.flags.force && !dryRun) {
        yield* collect(ctx, store, keepRuns, "remove");
        return 0;
      }
      const listed = yield* collect(ctx, store, keepRuns, "list");
      if (listed.removable === 0) return 0;
      if (dryRun || process.stdin.isTTY !== true) {
        ctx.out.write("nothing removed: rerun with --force to remove them\n");
        return 0;
      }
      if (!(yield* confirm(ctx, `remove them? [y/N] `))) {
        ctx.out.write("nothing removed\n");
        return 0;
      }
      const writable = yield* openCache(store.paths.root, "write");
      yield* collect(ctx, writable, keepRuns, "remove", false);
      return 0;
    }),
});

/** Asks a yes/no question on the terminal; only "y" or "yes" is yes. */
const confirm = <C, R>(ctx: GcContext<C, R>, question: string): Effect.Effect<boolean> =>
  Effect.promise(async () => {
    const terminal = createInterface({ input: process.stdin, output: ctx.out });
    try {
      return /^y(es)?$/i.test((await terminal.question(question)).trim());
    } finally {
      terminal.close();
    }
  });

/** The roots that need no lock to read: the current configuration and the project's lock files. */
const stableRoots = <C, R>(ctx: GcContext<C, R>, projectRoot: string) =>
  Effect.gen(function* () {
    const config = yield* configFromFlags(ctx);
    const dag = yield* attempt(() => buildDag(ctx.definition.stages, config, "all"));
    const current = yield* currentConfigurationRoots(dag);
    const locks = yield* lockRoots(projectLockFiles(projectRoot), projectRoot, (file, e) =>
      ctx.err.write(`note: ${path.relative(projectRoot, file)} is not a pipeline lock, skipped (${e.message})\n`),
    );
    return [current, ...locks];
  });

/**
 * Finds what nothing keeps and lists it; with "remove", removes it while holding the gc mutex (so no run starts
 * reading a key meanwhile) and reads the runs' records and leases under it; `listed` false skips the listing (shown
 * already before a confirmation). Returns how many entries there were to remove.
 */
const collect = <C, R>(
  ctx: GcContext<C, R>,
  store: StoreService,
  keepRuns: number,
  mode: "list" | "remove",
  listed = true,
): Effect.Effect<{ readonly removable: number }, UserError> =>
  Effect.gen(function* () {
    const projectRoot = ctx.project?.root ?? process.cwd();
    const stable = yield* stableRoots(ctx, projectRoot).pipe(Effect.provideService(Store, store));
    const sweep = (leased: ReadonlySet<string>) =>
      Effect.gen(function* () {
        const runs = yield* recentRunRoots(projectRoot, store.paths.root, keepRuns);
        const live: RootSet[] = leased.size === 0 ? [] : [{ name: "running", keys: leased }];
        const roots = [...stable, ...runs, ...live];
        const keep = new Set(roots.flatMap((r) => [...r.keys]));
        const listing = yield* store.gc(keep, { dryRun: true });
        if (listed) yield* report(ctx, store, roots, keep, listing, projectRoot, mode);
        if (mode === "remove") {
          const done = yield* store.gc(keep, { dryRun: false });
          const skipped = done.skipped.length === 0 ? "" : `; ${done.skipped.length} in use by a running process`;
          ctx.out.write(
            `removed ${done.removed.length} artifact(s), ${formatBytes(done.freedBytes)} in all${skipped}\n`,
          );
        }
        return { removable: listing.removedPaths.length };
      });
    return yield* mode === "remove" ? withGcMutex(store, sweep) : Effect.flatMap(leasedKeys(store), sweep);
  });

/** Node id, stage and parameters of a key, from its manifest or, without one (scratch), from the run records. */
const describeKey = (key: string, manifest: Manifest | undefined, recorded: ReadonlyMap<string, string>): string =>
  manifest === undefined
    ? (recorded.get(key) ?? shortKey(key))
    : `${manifest.nodeId}  ${manifest.stage} ${JSON.stringify(manifest.params)}  ${shortKey(key)}`;

/** Writes what gc keeps (per root) and what it would remove (per node, with sizes). */
const report = <C, R>(
  ctx: GcContext<C, R>,
  store: StoreService,
  roots: ReadonlyArray<RootSet>,
  keep: ReadonlySet<string>,
  listing: GcResult,
  projectRoot: string,
  mode: "list" | "remove",
) =>
  Effect.gen(function* () {
    const { manifests } = yield* store.list;
    const byKey = new Map(manifests.map((m) => [m.key, m]));
    const kept = manifests.filter((m) => keep.has(m.key));
    const keptBytes = kept.reduce((s, m) => s + Object.values(m.artifacts).reduce((t, a) => t + a.bytes, 0), 0);
    ctx.out.write(`keeping ${kept.length} artifact(s), ${formatBytes(keptBytes)}:\n`);
    for (const r of roots) {
      const reached = [...r.keys].filter((k) => byKey.has(k)).length;
      ctx.out.write(`  ${String(reached).padStart(5)}  reached by ${r.name}\n`);
    }
    const recorded = new Map<string, string>();
    for (const { record } of yield* Effect.promise(() => runRecords(projectRoot)))
      for (const [id, key] of Object.entries(record.nodes))
        if (key !== null && !recorded.has(key)) recorded.set(key, id);
    const lines: Array<{ what: string; bytes: number }> = [];
    const checkpoints: Array<{ what: string; bytes: number }> = [];
    const other = { quarantine: { n: 0, bytes: 0 }, bookkeeping: { n: 0, bytes: 0 } };
    // A removed entry (ac/<key>.json) is listed with the bytes of its blobs that go with it (a blob another entry
    // still names stays); its blobs and view are not listed again.
    const removedBlobs = new Set(
      listing.removedPaths.filter((p) => p.split(path.sep)[0] === "cas").map((p) => path.basename(p)),
    );
    for (const relative of listing.removedPaths) {
      const [dir, entry = ""] = relative.split(path.sep);
      if (dir === "cas" || dir === "views") continue;
      const entryKey = dir === "ac" ? entry.replace(/\.json$/, "") : "";
      if (isKey(entryKey)) {
        const manifest = byKey.get(entryKey);
        const artifacts = Object.values(manifest?.artifacts ?? {}).filter((a) => removedBlobs.has(a.sha256));
        const bytes = artifacts.reduce((sum, a) => sum + a.bytes, 0);
        lines.push({ what: describeKey(entryKey, manifest, recorded), bytes });
        continue;
      }
      const bytes = yield* Effect.promise(() => diskBytes(path.join(store.paths.root, relative)));
      if (dir === "scratch" && isKey(entry))
        checkpoints.push({
          what: `checkpoint of a dead run: ${describeKey(entry, byKey.get(entry), recorded)}`,
          bytes,
        });
      else {
        const kind = dir === "quarantine" ? other.quarantine : other.bookkeeping;
        kind.n++;
        kind.bytes += bytes;
      }
    }
    for (const key of yield* resumableScratch(store, keep, listing)) {
      const bytes = yield* Effect.promise(() => diskBytes(path.join(store.paths.scratch, key)));
      const name = recorded.get(key) ?? shortKey(key);
      ctx.out.write(`kept the checkpoint of ${name} (${formatBytes(bytes)}): a rerun resumes from it\n`);
    }
    if (listing.removedPaths.length === 0) {
      ctx.out.write("nothing to remove\n");
      return;
    }
    const verb = mode === "remove" ? "removing" : "would remove";
    const counts = [
      `${lines.length} artifact(s)`,
      ...(checkpoints.length > 0 ? [`${checkpoints.length} checkpoint(s)`] : []),
    ];
    ctx.out.write(`${verb} ${counts.join(" and ")}, ${formatBytes(listing.freedBytes)} in all:\n`);
    const row = (bytes: number, what: string) => ctx.out.write(`  ${formatBytes(bytes).padStart(10)}  ${what}\n`);
    for (const l of [...lines, ...checkpoints].sort((x, y) => x.what.localeCompare(y.what))) row(l.bytes, l.what);
    if (other.quarantine.n > 0) row(other.quarantine.bytes, `${other.quarantine.n} quarantined (corrupt) object(s)`);
    if (other.bookkeeping.n > 0)
      row(other.bookkeeping.bytes, `${other.bookkeeping.n} refs, stat memos and leftovers of removed artifacts`);
  });

/** Scratch dirs (checkpoints) of kept keys without an object: an interrupted node that a rerun continues. */
const resumableScratch = (store: StoreService, keep: ReadonlySet<string>, listing: GcResult) =>
  Effect.promise(async () => {
    const entries = (await ifExists(() => readdir(store.paths.scratch))) ?? [];
    return entries.filter(
      (k) =>
        isKey(k) &&
        keep.has(k) &&
        !listing.removedPaths.includes(path.join("scratch", k)) &&
        !existsSync(entryPath(store.paths, k)),
    );
  });
