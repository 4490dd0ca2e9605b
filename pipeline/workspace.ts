/**
 * The project a command works in. Its root is the nearest folder, from the current one upwards (as git, DVC and Nx
 * find theirs), holding `pipeline.config.json`: the configuration the user works with (a preset, `--set`
 * assignments, an optional JSON config file), which run, status, gc, lock, replay and params share, and the place of
 * the project's runtime data, `.pipeline/` (the cache in `.pipeline/cache`, the run records in `.pipeline/runs`).
 */
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { Either, Schema } from "effect";
import { ConfigError, formatParseError } from "./config.ts";

export const PROJECT_FILE = "pipeline.config.json";

/** The project's configuration file; every field is optional, and anything else in it is a mistake. */
export const ProjectSettings = Schema.Struct({
  /** The pipeline definition it configures; a file of another pipeline is not this pipeline's project. */
  pipeline: Schema.optionalWith(Schema.String, { exact: true }),
  preset: Schema.optionalWith(Schema.String, { exact: true }),
  /** `key=value` assignments, applied in order as `--set` applies them. */
  set: Schema.optionalWith(Schema.Array(Schema.String), { exact: true }),
  /** A JSON configuration file merged over the preset, relative to the project root. */
  config: Schema.optionalWith(Schema.String, { exact: true }),
  /** The remote cache's URL (docs/remote-cache.md), used when neither --remote nor PIPELINE_REMOTE names one. */
  remote: Schema.optionalWith(Schema.String, { exact: true }),
});
export type ProjectSettings = typeof ProjectSettings.Type;

export interface Project {
  readonly root: string;
  readonly file: string;
  readonly settings: ProjectSettings;
}

/** Where the project's runtime data lives (git-ignored), below its root. */
export const dataDir = (root: string): string => path.join(root, ".pipeline");
export const defaultCacheDir = (root: string): string => path.join(dataDir(root), "cache");
export const runsDir = (root: string): string => path.join(dataDir(root), "runs");

/** Decodes the text of a project file; a mistake is one line naming the file and the field. */
export const parseProjectSettings = (text: string, file: string): ProjectSettings => {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError({ message: `${file} is not valid JSON: ${(e as Error).message}` });
  }
  const decoded = Schema.decodeUnknownEither(ProjectSettings, { onExcessProperty: "error" })(json);
  if (Either.isLeft(decoded)) throw new ConfigError({ message: `invalid ${file}: ${formatParseError(decoded.left)}` });
  return decoded.right;
};

/** The nearest folder at or above `from` holding {@link PROJECT_FILE}, or undefined. */
export const findProjectFile = (from: string): string | undefined => {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const file = path.join(dir, PROJECT_FILE);
    if (existsSync(file)) return file;
    if (path.dirname(dir) === dir) return undefined;
  }
};

/**
 * The project of pipeline `pipelineName` around `from`: the nearest project file, read and validated (throws
 * ConfigError when it is invalid). `otherPipeline` reports a nearest file that configures another pipeline.
 */
export const findProject = (
  from: string,
  pipelineName: string,
): { readonly project?: Project; readonly otherPipeline?: { file: string; pipeline: string } } => {
  const file = findProjectFile(from);
  if (file === undefined) return {};
  const settings = parseProjectSettings(readFileSync(file, "utf8"), file);
  if (settings.pipeline !== undefined && settings.pipeline !== pipelineName)
    return { otherPipeline: { file, pipeline: settings.pipeline } };
  return { project: { root: path.dirname(file), file, settings } };
};

/** The one line a command that needs a project says outside of one. */
export const outsideProjectMessage = (from: string, otherPipeline?: { file: string; pipeline: string }): string => {
  const where = otherPipeline === undefined ? `no ${PROJECT_FILE} in ${path.resolve(from)} or above` : "";
  const other =
    otherPipeline === undefined ? "" : `${otherPipeline.file} configures pipeline "${otherPipeline.pipeline}"`;
  return (
    `not inside a project of this pipeline (${where}${other}); run \`pipeline init\` to make this folder one, ` +
    "or give --cache-dir DIR (env PIPELINE_CACHE_DIR)"
  );
};
