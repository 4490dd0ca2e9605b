// Whether dist/pipeline.mjs, the esbuild bundle of the CLI (scripts/build.ts), may run in place of the sources.
//
// dist/pipeline.sources.json lists every file the bundle was built from
// ({ files: { path: { size, mtimeMs, sha256 } } }, the bytes the build read). Each is stat'ed: the same size and mtime
// means unchanged, like git's index; a file whose stat differs is hashed and compared, so a mere touch or a checkout
// back and forth does not cost the bundle. A file that is gone, or a new import (which can only appear through an edit
// to a listed file), makes the bundle stale. About 130 stat calls, 1-2 ms. Plain JavaScript: bin/pipeline.mjs runs it
// before anything is compiled.
import { readFileSync, statSync } from "node:fs";

/**
 * "current": run the bundle; "stale": a listed file changed since the build; "absent": no bundle or no usable list.
 * `root` is the checkout's URL, ending in "/".
 */
export const bundleState = async (root) => {
  let files;
  try {
    statSync(new URL("dist/pipeline.mjs", root));
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
