/**
 * `npm run build` (also run by `npm ci` / `npm install` through `prepare`): bundles the CLI with esbuild into dist/,
 * so `npx pipeline` starts without tsx's loader and without Node resolving hundreds of small dependency modules
 * (the `effect` barrel alone is ~600). bin/pipeline.mjs runs the bundle only while it is current (see there).
 *
 *   dist/pipeline.mjs            the entry (the paper pipeline's CLI), with every pure-JS package bundled
 *   dist/<name>-<hash>.mjs       chunks loaded on demand (the report renderer, backend setup, ...)
 *   dist/pipeline.sources.json   what it was built from: { files: { "<repo path>": { size, mtimeMs, sha256 } } }
 *
 * Packages in UNBUNDLED_PACKAGES load from node_modules at run time. Our modules that resolve files relative to
 * themselves (`import.meta.url`: ../package.json, the repository root) get the URL of their original file, expressed
 * relative to the bundle, so the bundle stays relocatable with the checkout.
 *
 * Dynamic `import()`s stay lazy: with code splitting, what only they reach goes into its own chunk and costs
 * nothing at start-up (esbuild hoists external imports, so without splitting a lazily used native package such as
 * @resvg/resvg-js would load with the entry).
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Packages always left to Node: those with native addons, or that load them. */
export const UNBUNDLED_PACKAGES: ReadonlyArray<string> = ["@tensorflow/*", "@duckdb/*", "@resvg/*"];

/** The CLI's entry, as bin/pipeline.mjs runs it from the sources. */
export const CLI_ENTRY = `import { runMain } from "./pipeline/cli.ts";
import { paperPipeline } from "./stages/index.ts";
runMain(paperPipeline);
`;

/** Files that shape the bundle besides the modules in it: a change to any of them makes the bundle stale. */
const BUILD_INPUTS = ["package.json", "package-lock.json", "tsconfig.json", "scripts/build.ts"];

/** The name of the list of sources next to the bundle (read by bin/pipeline.mjs). */
export const SOURCES_FILE = "pipeline.sources.json";

export interface SourceStamp {
  readonly size: number;
  readonly mtimeMs: number;
  readonly sha256: string;
}

export interface SourcesManifest {
  readonly formatVersion: 1;
  /** By path relative to the root, "/"-separated: the stat and the sha256 of the bytes the build read. */
  readonly files: Readonly<Record<string, SourceStamp>>;
}

export interface BuildOptions {
  /**
   * Where the bundle goes (default <root>/dist). Files in it that this build did not write are removed after a week.
   */
  readonly outDir?: string;
  /** The checkout whose sources are bundled (default this one). */
  readonly root?: string;
  /** Entry module source, resolved from the root (default CLI_ENTRY). */
  readonly entrySource?: string;
}

export interface BuildResult {
  readonly outDir: string;
  /** The entry file, outDir/pipeline.mjs. */
  readonly entry: string;
  /** Output files (entry and chunks) with their sizes. */
  readonly outputs: ReadonlyArray<{ readonly file: string; readonly bytes: number }>;
  /** Root-relative paths the bundle was built from: our modules, then BUILD_INPUTS. */
  readonly sources: ReadonlyArray<string>;
  /** Bundled input files by top-level location ("pipeline", "node_modules/effect", ...). */
  readonly inputsByArea: Readonly<Record<string, number>>;
  readonly buildMs: number;
}

/** How long a chunk that the current build no longer references is kept in outDir. */
const OLD_CHUNK_MS = 7 * 24 * 3600 * 1000;

const writeFileAtomic = (file: string, contents: Uint8Array | string) => {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  writeFileSync(temp, contents);
  renameSync(temp, file);
};

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

const toPosix = (p: string) => p.split(path.sep).join("/");

/** Stat first, then read: if the file changes in between, the stat no longer matches later and the hash decides. */
const stampOf = (file: string): { readonly stamp: SourceStamp; readonly bytes: Buffer } => {
  const stats = statSync(file);
  const bytes = readFileSync(file);
  return { stamp: { size: stats.size, mtimeMs: stats.mtimeMs, sha256: sha256(bytes) }, bytes };
};

/** The names `effect` re-exports as whole modules (`export * as Schema from "./Schema.js"`). */
const effectModuleNames = (root: string): ReadonlySet<string> => {
  const barrel = readFileSync(path.join(root, "node_modules/effect/dist/esm/index.js"), "utf8");
  return new Set(
    [...barrel.matchAll(/^export \* as (\w+) from "\.\/(\w+)\.js";$/gm)].filter((m) => m[1] === m[2]).map((m) => m[1]!),
  );
};

/**
 * `import { Effect, Schema } from "effect"` as `import * as Effect from "effect/Effect"; import * as Schema from
 * "effect/Schema";`: the same module objects (the barrel re-exports each module whole), but esbuild then leaves out
 * what the barrel alone drags in, about half of effect's share of the bundle. Only imports whose every name is such
 * a module (or a type-only name of one) are rewritten; anything else stays as written.
 */
export const importEffectModules = (text: string, modules: ReadonlySet<string>): string =>
  text.replace(/^import \{([^}]*)\} from "effect";$/gm, (line, list: string) => {
    const names = list
      .split(",")
      .map((name) => name.trim())
      .filter((name) => name !== "");
    // A type-only name (`type Stream`) is erased by TypeScript: it becomes a type-only import of its module, which
    // costs nothing, instead of keeping the whole line on the barrel (which drags in Stream, Queue, fast-check...).
    const modulesOf = names.map((name) => /^(type\s+)?(\w+)$/.exec(name));
    if (names.length === 0 || !modulesOf.every((m) => m !== null && modules.has(m[2]!))) return line;
    return modulesOf
      .map((m) => `import ${m![1] === undefined ? "" : "type "}* as ${m![2]!} from "effect/${m![2]!}";`)
      .join(" ");
  });

/** Builds the CLI bundle; throws esbuild's errors. */
export const buildCli = async (options: BuildOptions = {}): Promise<BuildResult> => {
  const esbuild = await import("esbuild");
  const root = path.resolve(options.root ?? repoRoot);
  const outDir = path.resolve(options.outDir ?? path.join(root, "dist"));
  const started = performance.now();
  const stamps = new Map<string, SourceStamp>();
  const effectModules = effectModuleNames(root);
  for (const file of BUILD_INPUTS) stamps.set(file, stampOf(path.join(root, file)).stamp);

  const result = await esbuild.build({
    absWorkingDir: root,
    stdin: {
      contents: options.entrySource ?? CLI_ENTRY,
      resolveDir: root,
      sourcefile: "pipeline-entry.ts",
      loader: "ts",
    },
    bundle: true,
    splitting: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outdir: outDir,
    entryNames: "pipeline",
    chunkNames: "[name]-[hash]",
    outExtension: { ".js": ".mjs" },
    write: false,
    metafile: true,
    logLevel: "silent",
    // Bundled CommonJS packages call require() for Node built-ins; an ES module has none, so each output gets one.
    banner: {
      js: `import { createRequire as __bundleCreateRequire } from "node:module";\nconst require = __bundleCreateRequire(import.meta.url);`,
    },
    external: [...UNBUNDLED_PACKAGES],
    plugins: [
      {
        name: "own-sources",
        setup(build) {
          build.onLoad({ filter: /\.(ts|mts)$/ }, (args) => {
            const relative = path.relative(root, args.path);
            if (relative.startsWith("..") || relative.split(path.sep).includes("node_modules")) return undefined;
            const { stamp, bytes } = stampOf(args.path);
            stamps.set(toPosix(relative), stamp);
            let contents = importEffectModules(bytes.toString("utf8"), effectModules);
            // Every chunk lies in outDir, so one path relative to it serves wherever the module ends up.
            const url = `new URL(${JSON.stringify(toPosix(path.relative(outDir, args.path)))}, import.meta.url).href`;
            if (contents.includes("import.meta.url")) contents = contents.replaceAll("import.meta.url", url);
            return { contents, loader: "ts" };
          });
        },
      },
    ],
  });

  // Chunks first, then the entry, then the list of sources, each renamed into place: a process starting meanwhile
  // runs a complete build, and while it may pair the new entry with the old list, that list then either matches the
  // sources (so did the old build, from the same sources) or calls the bundle stale. Chunks no longer referenced stay
  // a week: a process started from the previous build may still import one (the report renderer, hours later).
  mkdirSync(outDir, { recursive: true });
  const entry = path.join(outDir, "pipeline.mjs");
  const entryOutput = result.outputFiles.find((file) => file.path === entry);
  if (entryOutput === undefined) throw new Error(`esbuild wrote no ${entry}`);
  const chunks = result.outputFiles.filter((file) => file !== entryOutput);
  for (const file of chunks) writeFileAtomic(file.path, file.contents);
  writeFileAtomic(entry, entryOutput.contents);
  const manifest: SourcesManifest = {
    formatVersion: 1,
    files: Object.fromEntries([...stamps].sort(([a], [b]) => (a < b ? -1 : 1))),
  };
  writeFileAtomic(path.join(outDir, SOURCES_FILE), `${JSON.stringify(manifest, null, 1)}\n`);
  const current = new Set([SOURCES_FILE, ...result.outputFiles.map((file) => path.basename(file.path))]);
  for (const name of readdirSync(outDir)) {
    const file = path.join(outDir, name);
    if (!current.has(name) && Date.now() - statSync(file).mtimeMs > OLD_CHUNK_MS)
      rmSync(file, { recursive: true, force: true });
  }
  const buildMs = performance.now() - started;

  const inputsByArea: Record<string, number> = {};
  for (const input of Object.keys(result.metafile.inputs)) {
    const parts = input.split("/");
    const at = parts.lastIndexOf("node_modules");
    const area =
      at >= 0
        ? `node_modules/${parts[at + 1]?.startsWith("@") ? `${parts[at + 1]}/${parts[at + 2]}` : parts[at + 1]}`
        : parts[0]!;
    inputsByArea[area] = (inputsByArea[area] ?? 0) + 1;
  }
  return {
    outDir,
    entry,
    outputs: result.outputFiles.map((file) => ({ file: file.path, bytes: file.contents.byteLength })),
    sources: [...stamps.keys()],
    inputsByArea,
    buildMs,
  };
};

const cli = async (): Promise<void> => {
  // esbuild is a devDependency, and also tsx's own dependency, so it is there whenever this script can run at all.
  const built = await buildCli();
  const bytes = built.outputs.reduce((sum, o) => sum + o.bytes, 0);
  const files = Object.values(built.inputsByArea).reduce((a, b) => a + b, 0);
  process.stderr.write(
    `build: ${path.relative(process.cwd(), built.entry) || built.entry} + ${built.outputs.length - 1} chunks, ` +
      `${(bytes / 1024 / 1024).toFixed(1)} MiB from ${files} files in ${(built.buildMs / 1000).toFixed(1)} s\n`,
  );
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await cli();
}
