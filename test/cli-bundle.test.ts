/**
 * The CLI bundle (scripts/build.ts, `npm run build`) and bin/pipeline.mjs's choice between it and the sources.
 *
 * A scratch checkout (our TypeScript sources, package manifests, the build script and the bin, with node_modules
 * linked) is bundled once; the bundle must run the CLI like the sources do, and the bin must run it only while every
 * file it was built from still has the same bytes, falling back to the sources (through tsx) otherwise.
 */
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { Effect, Layer } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Store } from "../cache/service.ts";
import { ArtifactStore } from "../cache/store.ts";
import { renderDag } from "../pipeline/commands/dag.ts";
import { loadConfig } from "../pipeline/config.ts";
import { executeDag } from "../pipeline/executor/dag.ts";
import { buildDag } from "../pipeline/graph.ts";
import { paperPipeline } from "../stages/index.ts";
import { paperShapedPipeline } from "../benchmarks/lib/paper-shaped.ts";
import {
  buildCli,
  importEffectModules,
  SOURCES_FILE,
  type BuildResult,
  type SourcesManifest,
} from "../scripts/build.ts";
import { bundleState } from "../bin/bundle-state.mjs";

const repoRoot = path.resolve(import.meta.dirname, "..");
const scratch = mkdtempSync(path.join(tmpdir(), "cli-bundle-test-"));
const checkout = path.join(scratch, "checkout");
const cacheDir = path.join(scratch, "cache");
let built: BuildResult;

/** Runs the scratch checkout's bin/pipeline.mjs. */
const pipeline = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const r = spawnSync(process.execPath, [path.join(checkout, "bin/pipeline.mjs"), ...args], {
    cwd: scratch,
    encoding: "utf8",
    env: { ...process.env, PIPELINE_FROM_SOURCES: "", ...env },
    timeout: 90_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

const copyTypeScript = (from: string, to: string) =>
  cpSync(from, to, { recursive: true, filter: (src) => statSync(src).isDirectory() || src.endsWith(".ts") });

beforeAll(async () => {
  for (const dir of ["pipeline", "stages", "science"])
    copyTypeScript(path.join(repoRoot, dir), path.join(checkout, dir));
  // cache/ holds the store's sources and, in a working checkout, its runtime data: only the sources.
  mkdirSync(path.join(checkout, "cache"));
  for (const f of readdirSync(path.join(repoRoot, "cache")).filter((f) => f.endsWith(".ts")))
    copyFileSync(path.join(repoRoot, "cache", f), path.join(checkout, "cache", f));
  copyTypeScript(path.join(repoRoot, "cache", "remote"), path.join(checkout, "cache", "remote"));
  for (const f of [
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "scripts/build.ts",
    "bin/pipeline.mjs",
    "bin/bundle-state.mjs",
  ]) {
    mkdirSync(path.dirname(path.join(checkout, f)), { recursive: true });
    copyFileSync(path.join(repoRoot, f), path.join(checkout, f));
  }
  symlinkSync(path.join(repoRoot, "node_modules"), path.join(checkout, "node_modules"), "dir");
  built = await buildCli({ root: checkout });

  // A fully cached paper-shaped DAG under the smoke preset: same keys as the real pipeline's, trivial bytes.
  const { config } = loadConfig(paperShapedPipeline, { preset: "smoke" });
  const dag = buildDag(paperShapedPipeline.stages, config, "all");
  const results = await Effect.runPromise(
    executeDag(dag, Layer.empty, { jobs: 2, gpus: 1, tool: { name: "test", version: "1" } }).pipe(
      Effect.provide(Store.from(await ArtifactStore.open(cacheDir))),
    ),
  );
  expect(results.every((r) => r.status === "ran")).toBe(true);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("importing effect's modules instead of its barrel", () => {
  const modules = new Set(["Effect", "Schema", "Stream"]);
  it("rewrites value and type-only names, single- or multi-line, and leaves anything else on the barrel", () => {
    expect(importEffectModules('import { Effect, type Stream } from "effect";', modules)).toBe(
      'import * as Effect from "effect/Effect"; import type * as Stream from "effect/Stream";',
    );
    expect(importEffectModules('import {\n  Effect,\n  Schema,\n} from "effect";', modules)).toBe(
      'import * as Effect from "effect/Effect"; import * as Schema from "effect/Schema";',
    );
    const unknown = 'import { Effect, pipe } from "effect";';
    expect(importEffectModules(unknown, modules)).toBe(unknown);
  });
});

describe("the bundle", () => {
  it("lists what it was built from: our modules with their hashes, the manifests and the build script", () => {
    const manifest = JSON.parse(readFileSync(path.join(checkout, "dist", SOURCES_FILE), "utf8")) as SourcesManifest;
    const files = Object.keys(manifest.files);
    expect(files).toEqual(
      expect.arrayContaining([
        "pipeline/cli.ts",
        "cache/store.ts",
        "stages/index.ts",
        "stages/report.ts",
        "science/report/render.ts",
        "package.json",
        "package-lock.json",
        "scripts/build.ts",
      ]),
    );
    expect(files.every((f) => !f.includes("node_modules"))).toBe(true);
    expect(manifest.files["pipeline/cli.ts"]!.size).toBe(statSync(path.join(checkout, "pipeline/cli.ts")).size);
    // The report renderer (vega, vega-lite, resvg) is a chunk of its own, loaded when a report node runs.
    const entry = readFileSync(built.entry, "utf8");
    expect(entry).not.toMatch(/from "@resvg\/resvg-js"/);
    expect(built.outputs.length).toBeGreaterThan(1);
  });

  it("resolves every module-relative URL (package.json, the repository root) to the original file", () => {
    const urls = readdirSync(built.outDir)
      .filter((f) => f.endsWith(".mjs"))
      .flatMap((f) =>
        [
          ...readFileSync(path.join(built.outDir, f), "utf8").matchAll(
            /new URL\("([^"]+)", import\.meta\.url\)\.href/g,
          ),
        ].map((m) => m[1]!),
      );
    expect(urls).toEqual(expect.arrayContaining(["../pipeline/commands/context.ts", "../science/backend/select.ts"]));
    for (const url of urls) expect(statSync(path.resolve(built.outDir, url)).isFile()).toBe(true);
  });

  it("runs the CLI: --help, dag, a fully cached run, status and inspect (a Parquet read, loaded on first use)", () => {
    const help = pipeline(["--help"]);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^usage: pipeline <command>/);
    expect(help.out).toContain("setup-backend");

    const dag = pipeline(["dag", "all", "--preset", "smoke"]);
    expect(dag.code).toBe(0);
    const expected = renderDag(
      buildDag(paperPipeline.stages, loadConfig(paperPipeline, { preset: "smoke" }).config, "all"),
      "text",
    );
    expect(dag.out).toBe(`${expected}\n`);

    const nodes = expected.split("\n").length;
    const run = pipeline(["run", "all", "--preset", "smoke", "--cache-dir", cacheDir]);
    expect(run.err).toContain(`plan all: ${nodes} nodes, ${nodes} cached, 0 to run, 0 pending`);
    expect(run.code).toBe(0);

    const status = pipeline(["status", "--preset", "smoke", "--cache-dir", cacheDir, "--json"]);
    expect((JSON.parse(status.out) as Array<{ status: string }>).every((n) => n.status === "cached")).toBe(true);

    const inspect = pipeline([
      "inspect",
      "preprocess:mnist",
      "--preset",
      "smoke",
      "--cache-dir",
      cacheDir,
      "--rows",
      "1",
    ]);
    expect(inspect.code).toBe(0);
    expect(inspect.out).toMatch(/^preprocess\[mnist\] {2}key [0-9a-f]{64}/);
    expect(inspect.out).toContain(`{"index":0,"label":0,"pixels":"<1 bytes>"}`); // the first row, read from Parquet

    const usage = pipeline(["run", "--cache-dir", cacheDir]); // (outside a project, without it, it says so)
    expect(usage.code).toBe(2);
    expect(usage.err).toBe("pipeline: run needs a TARGET (a stage name or all)\n");
  });
});

describe("bin/pipeline.mjs", () => {
  it("runs the bundle while every listed file has its built bytes, the sources (through tsx) once one changed or when asked", () => {
    // A stand-in bundle shows which way the bin went; the sources print the real help.
    const entry = path.join(checkout, "dist/pipeline.mjs");
    renameSync(entry, `${entry}.real`);
    writeFileSync(entry, `process.stdout.write("from the bundle\\n");\n`);
    try {
      expect(pipeline(["--help"]).out).toBe("from the bundle\n");

      const source = path.join(checkout, "pipeline/plan.ts");
      const original = readFileSync(source);
      const later = new Date(Date.now() + 5_000);
      utimesSync(source, later, later); // a new stat, the same bytes: still current
      expect(pipeline(["--help"]).out).toBe("from the bundle\n");

      writeFileSync(source, Buffer.concat([original, Buffer.from("// edited\n")]));
      const edited = pipeline(["--help"]);
      expect(edited.code).toBe(0);
      expect(edited.out).toMatch(/^usage: pipeline <command>/);

      writeFileSync(source, original); // edited back: the bytes match again
      expect(pipeline(["--help"]).out).toBe("from the bundle\n");

      expect(pipeline(["--help"], { PIPELINE_FROM_SOURCES: "1" }).out).toMatch(/^usage: pipeline <command>/);
    } finally {
      renameSync(`${entry}.real`, entry);
    }
  });

  it("bundleState: current after a build, stale once a listed file differs in size or bytes or is gone, absent without the list", async () => {
    const root = pathToFileURL(`${checkout}/`);
    expect(await bundleState(root)).toBe("current");
    const source = path.join(checkout, "cache/manifest.ts");
    const original = readFileSync(source);
    const flipped = Buffer.from(original);
    flipped[0] = flipped[0]! ^ 1; // same size, other bytes
    const list = path.join(checkout, "dist", SOURCES_FILE);
    try {
      writeFileSync(source, flipped);
      expect(await bundleState(root)).toBe("stale");
      writeFileSync(source, Buffer.concat([original, Buffer.from("\n")]));
      expect(await bundleState(root)).toBe("stale");
      rmSync(source);
      expect(await bundleState(root)).toBe("stale");
      writeFileSync(source, original);
      expect(await bundleState(root)).toBe("current");
      renameSync(list, `${list}.moved`);
      expect(await bundleState(root)).toBe("absent");
    } finally {
      writeFileSync(source, original);
      if (existsSync(`${list}.moved`)) renameSync(`${list}.moved`, list);
    }
  });
});
