/**
 * Prototype of a fast-starting CLI: the TypeScript sources bundled by esbuild into one ES module, so a run needs
 * neither tsx's loader thread and transforms nor Node's resolution of hundreds of small dependency files (the
 * `effect` barrel alone is ~400 modules).
 *
 * Sources stay as they are. The only source-level concern is `import.meta.url`: five modules resolve files relative
 * to their own location (../package.json, the repository root). In a bundle every module shares the bundle's URL, so
 * a plugin rewrites each `import.meta.url` in our own sources to the URL of the original file, expressed relative to
 * the bundle (`new URL("../science/backend/select.ts", import.meta.url).href`), which keeps the bundle relocatable
 * with the checkout.
 *
 * esbuild is present as a dependency of tsx; the real build would add it as a devDependency.
 */
import { writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * Packages always left to Node: those with native addons (or that load them), and parquetjs-lite, whose generated
 * thrift code assigns undeclared globals (sloppy mode), which fails in an ES module.
 */
export const UNBUNDLED_PACKAGES: ReadonlyArray<string> = ["@tensorflow/*", "@duckdb/*", "@resvg/*", "parquetjs-lite"];

export interface BundleOptions {
  /** Source text of the entry module; imports resolve from the repository root. */
  readonly entrySource: string;
  readonly outFile: string;
  /**
   * "none": only our own sources are bundled, every package stays in node_modules;
   * "pure-js": every package is bundled except UNBUNDLED_PACKAGES and `extraExternal`.
   */
  readonly bundlePackages: "none" | "pure-js";
  readonly extraExternal?: ReadonlyArray<string>;
  readonly minify?: boolean;
  /**
   * Our source files (repository-relative) replaced by the given module text: to measure what loading a module lazily
   * would save at startup, without changing it. Only for measurements; such a bundle cannot run what was stubbed.
   */
  readonly stubs?: Readonly<Record<string, string>>;
}

export interface BundleResult {
  readonly outFile: string;
  /** Repository files the bundle was built from (relative, "/"-separated): our sources, then the package manifests. */
  readonly sources: ReadonlyArray<string>;
  readonly bytes: number;
  readonly buildMs: number;
  /** Input files bundled, by top-level location ("pipeline", "node_modules/effect", ...). */
  readonly inputsByArea: Readonly<Record<string, number>>;
}

/** The entry of bin/pipeline.mjs without tsx: the paper pipeline's CLI. */
export const PAPER_CLI_ENTRY = `import { main } from "./pipeline/cli.ts";
import { paperPipeline } from "./stages/index.ts";
process.exitCode = await main(paperPipeline, process.argv.slice(2));
`;

/** PAPER_CLI_ENTRY with the lookup prototypes of engine-prototypes.ts installed: what the proposed engine fixes would give. */
export const PAPER_CLI_PROTOTYPES_ENTRY = `import { ArtifactStore } from "./cache/store.ts";
import { installProcessWidePrototypes } from "./benchmarks/lib/engine-prototypes.ts";
import { main } from "./pipeline/cli.ts";
import { paperPipeline } from "./stages/index.ts";
installProcessWidePrototypes(ArtifactStore);
process.exitCode = await main(paperPipeline, process.argv.slice(2));
`;

/**
 * science/report/render.ts (vega, vega-lite and the native resvg) replaced by a stub with the same exports: the startup
 * that loading it lazily, when the report stage runs, would save.
 */
export const LAZY_RENDER_STUBS: Readonly<Record<string, string>> = {
  "science/report/render.ts": `const notLoaded = () => { throw new Error("stub: render.ts not bundled"); };
export const DEJAVU_DIR = "/usr/share/fonts/truetype/dejavu";
export const renderSvg = notLoaded;
export const svgToPng = notLoaded;
export const prefixSvgIds = notLoaded;
`,
};

/** The engine alone (cli + effect + cache), over the synthetic layered pipeline: the floor if science code loaded lazily. */
export const ENGINE_ONLY_ENTRY = `import { main } from "./pipeline/cli.ts";
import { layeredPipeline } from "./benchmarks/lib/trivial-stages.ts";
process.exitCode = await main(layeredPipeline, process.argv.slice(2));
`;

/** Builds one bundle with esbuild. */
export const buildBundle = async (options: BundleOptions): Promise<BundleResult> => {
  const esbuild = await import("esbuild");
  const outDir = path.dirname(path.resolve(options.outFile));
  const ownSource = /\.(ts|mts)$/;
  const started = performance.now();
  const result = await esbuild.build({
    stdin: { contents: options.entrySource, resolveDir: repoRoot, sourcefile: "entry.ts", loader: "ts" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile: options.outFile,
    metafile: true,
    minify: options.minify ?? false,
    logLevel: "error",
    // Bundled CommonJS packages call require() for Node built-ins; ESM has no require, so provide one.
    banner: { js: `import { createRequire as __bundleCreateRequire } from "node:module";\nconst require = __bundleCreateRequire(import.meta.url);` },
    ...(options.bundlePackages === "none"
      ? { packages: "external" as const }
      : { external: [...UNBUNDLED_PACKAGES, ...(options.extraExternal ?? [])] }),
    plugins: [
      {
        name: "own-import-meta-url",
        setup(build) {
          build.onLoad({ filter: ownSource }, async (args) => {
            if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
            const stub = options.stubs?.[path.relative(repoRoot, args.path).split(path.sep).join("/")];
            if (stub !== undefined) return { contents: stub, loader: "ts" };
            const text = await readFile(args.path, "utf8");
            if (!text.includes("import.meta.url")) return { contents: text, loader: "ts" };
            const relative = path.relative(outDir, args.path).split(path.sep).join("/");
            const url = `new URL(${JSON.stringify(relative)}, import.meta.url).href`;
            return { contents: text.replaceAll("import.meta.url", url), loader: "ts" };
          });
        },
      },
    ],
  });
  const buildMs = performance.now() - started;
  const inputsByArea: Record<string, number> = {};
  for (const input of Object.keys(result.metafile.inputs)) {
    const parts = input.split("/");
    const area = parts[0] === "node_modules" ? `node_modules/${parts[1]?.startsWith("@") ? `${parts[1]}/${parts[2]}` : parts[1]}` : parts[0]!;
    inputsByArea[area] = (inputsByArea[area] ?? 0) + 1;
  }
  const output = Object.entries(result.metafile.outputs)[0]!;
  const sources = [
    ...Object.keys(result.metafile.inputs).filter((input) => !input.startsWith("node_modules/") && input !== "<stdin>" && !input.startsWith("entry.ts")),
    "package.json",
    "package-lock.json",
  ];
  return { outFile: options.outFile, sources, bytes: output[1].bytes, buildMs, inputsByArea };
};

/**
 * The proposed `npm run build` (and `prepare`): dist/pipeline.mjs, the paper CLI with every pure-JS package bundled,
 * and dist/pipeline.sources.json, the repository files it was built from, which bin/pipeline.mjs compares mtimes
 * against to decide whether the bundle is current (see benchmarks/lib/proposed-bin.mjs).
 */
export const buildCliBundle = async (distDir: string): Promise<BundleResult> => {
  const built = await buildBundle({ entrySource: PAPER_CLI_ENTRY, outFile: path.join(distDir, "pipeline.mjs"), bundlePackages: "pure-js" });
  writeFileSync(path.join(distDir, "pipeline.sources.json"), `${JSON.stringify(built.sources, null, 1)}\n`);
  return built;
};
