#!/usr/bin/env node
// Proposed content of bin/pipeline.mjs (a prototype: benchmarks/README-planning.md says how it was checked).
// Entry point of `npx pipeline`. Runs dist/pipeline.mjs, an esbuild bundle of the TypeScript sources made by
// `npm run build` (run by `npm ci` too, through `prepare`), when no file it was built from is newer than it;
// otherwise loads the sources through tsx as before, so an edited checkout never runs stale code.
import { readFileSync, statSync } from "node:fs";

const bundle = new URL("../dist/pipeline.mjs", import.meta.url);

/** True when the bundle exists and is at least as new as every source file listed next to it. */
const bundleIsCurrent = () => {
  try {
    const builtAt = statSync(bundle).mtimeMs;
    const sources = JSON.parse(readFileSync(new URL("../dist/pipeline.sources.json", import.meta.url), "utf8"));
    return sources.every((file) => statSync(new URL(`../${file}`, import.meta.url)).mtimeMs <= builtAt);
  } catch {
    return false; // no bundle, no list, or a listed file is gone: the sources decide
  }
};

if (process.env.PIPELINE_FROM_SOURCES !== "1" && bundleIsCurrent()) {
  await import(bundle.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  const { main } = await import("../pipeline/cli.ts");
  const { paperPipeline } = await import("../stages/index.ts");
  process.exitCode = await main(paperPipeline, process.argv.slice(2));
}
