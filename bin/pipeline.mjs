#!/usr/bin/env node
// Entry point of `npx pipeline`. Runs dist/pipeline.mjs, the esbuild bundle of the TypeScript sources made by
// `npm run build` (and by `npm ci` / `npm install`, through `prepare`), while every file it was built from still has
// the bytes it had then (bundle-state.mjs); otherwise loads the sources through tsx, so an edited checkout never runs
// stale code. PIPELINE_FROM_SOURCES=1 always uses the sources.
import { bundleState } from "./bundle-state.mjs";

const root = new URL("../", import.meta.url);
const state = process.env.PIPELINE_FROM_SOURCES === "1" ? "forced" : await bundleState(root);
if (state === "current") {
  await import(new URL("dist/pipeline.mjs", root).href);
} else {
  if (state === "stale" && process.stderr.isTTY) {
    process.stderr.write(
      "pipeline: sources changed since `npm run build`; running them through tsx (slower start-up)\n",
    );
  }
  const { register } = await import("tsx/esm/api");
  register();
  const { runMain } = await import("../pipeline/cli.ts");
  const { paperPipeline } = await import("../stages/index.ts");
  runMain(paperPipeline);
}
