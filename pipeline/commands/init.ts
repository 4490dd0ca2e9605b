/**
 * `pipeline init [--preset NAME] [--set key=value]... [--config FILE]`: makes the current folder a project by writing
 * its pipeline.config.json (see pipeline/workspace.ts) with the configuration given, after checking that it is valid.
 * An existing file is never overwritten.
 */
import { existsSync } from "node:fs";
import * as path from "node:path";
import { Effect } from "effect";
import { writeFileAtomic } from "../../cache/fsutil.ts";
import { loadConfig } from "../config.ts";
import { stableJson } from "../replay/lockfile.ts";
import { errorMessage } from "../stage.ts";
import { defaultCacheDir, PROJECT_FILE, type ProjectSettings } from "../workspace.ts";
import { defineCommand } from "./context.ts";
import { attempt, UsageError } from "./errors.ts";

export const init = defineCommand({
  name: "init",
  flags: {},
  store: "none",
  run: (ctx) =>
    Effect.gen(function* () {
      if (ctx.positionals.length > 0)
        return yield* new UsageError({ message: `init takes no argument, got "${ctx.positionals[0]}"` });
      const root = process.cwd();
      const file = path.join(root, PROJECT_FILE);
      if (existsSync(file))
        return yield* new UsageError({ message: `${file} already exists: edit it, or remove it to start over` });
      const { preset, config, set } = ctx.common;
      yield* attempt(() => loadConfig(ctx.definition, { preset, configFile: config, assignments: set }));
      const settings: ProjectSettings = {
        pipeline: ctx.definition.name,
        ...(preset === undefined ? {} : { preset }),
        set,
        ...(config === undefined ? {} : { config: path.relative(root, path.resolve(config)) }),
      };
      yield* Effect.tryPromise({
        try: () => writeFileAtomic(file, stableJson(settings)),
        catch: (e) => new UsageError({ message: `cannot write ${file}: ${errorMessage(e)}` }),
      });
      ctx.err.write(`created ${file}; the cache is ${defaultCacheDir(root)}: add .pipeline/ to .gitignore\n`);
      return 0;
    }),
});
