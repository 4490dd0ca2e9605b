#!/usr/bin/env node
// Entry point of `npx pipeline`. Runs dist/pipeline.mjs, the esbuild bundle of the TypeScript sources made by
// `npm run build` (and by `npm ci` / `npm install`, through `prepare`), when every file it was built from still has
// the bytes it had then; otherwise loads the sources through tsx, so an edited checkout never runs stale code.
// PIPELINE_FROM_SOURCES=1 always uses the sources.
//
// The check reads dist/pipeline.sources.json ({ files: { path: { size, mtimeMs, sha256 } } }, written by
// scripts/build.ts from the bytes the build read) and stats each file: same size and mtime means unchanged, like
// git's index; a file whose stat differs is hashed and compared. A file that is gone, or a new import (which can only
// appear through an edit to a listed file), makes the bundle stale. About 130 stat calls, 1-2 ms.
import { readFileSync, statSync } from "node:fs";

const root = new URL("../", import.meta.url);
const bundle = new URL("dist/pipeline.mjs", root);

/** "current", "stale" (a listed file changed) or "absent" (no usable bundle or list). */
const bundleState = async () => {
  let files;
  try {
    statSync(bundle);
    const manifest = JSON.parse(readFileSync(new URL("dist/pipeline.sources.json", root), "utf8"));
    if (manifest.formatVersion !== 1) return "absent";
    files = Object.entries(manifest.files);
  } catch {
    return "absent";
  }
  let createHash;
  for (const [file, stamp] of files) {
    const url = new URL(file, root);
    try {
      const stats = statSync(url);
      if (stats.size === stamp.size && stats.mtimeMs === stamp.mtimeMs) continue;
      if (stats.size !== stamp.size) return "stale";
      createHash ??= (await import("node:crypto")).createHash;
      if (createHash("sha256").update(readFileSync(url)).digest("hex") !== stamp.sha256) return "stale";
    } catch {
      return "stale";
    }
  }
  return "current";
};

const state = process.env.PIPELINE_FROM_SOURCES === "1" ? "forced" : await bundleState();
if (state === "current") {
  await import(bundle.href);
} else {
  if (state === "stale" && process.stderr.isTTY) {
    process.stderr.write("pipeline: sources changed since `npm run build`; running them through tsx (slower start-up)\n");
  }
  const { register } = await import("tsx/esm/api");
  register();
  const { main } = await import("../pipeline/cli.ts");
  const { paperPipeline } = await import("../stages/index.ts");
  process.exitCode = await main(paperPipeline, process.argv.slice(2));
}
