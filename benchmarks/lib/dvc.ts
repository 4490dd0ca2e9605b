/**
 * The DVC side of the planning benchmark: an equivalent dvc.yaml (one DVC stage per DAG node, one output file per
 * artifact, a dependency on every non-volatile artifact file of each upstream node, trivial shell commands), brought
 * up to date, then timed as whole processes (`dvc status`, no-op `dvc repro`).
 *
 * "Up to date" is reached either by running `dvc repro` (faithful, but DVC needs ~1-2 s per stage here, so a few
 * minutes for the paper's 162 nodes) or by writing the outputs, dvc.lock and the cache exactly as `dvc repro` would
 * (seconds for any size). Either way DVC itself must then report the project up to date, or setup fails.
 */
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { CommandFailed, runCommand, type Command } from "./measure.ts";

/** One node of the graph to mirror: its output files and the upstream nodes whose files it reads. */
export interface MirrorNode {
  readonly id: string;
  /** Artifact names this node writes. */
  readonly outputs: ReadonlyArray<string>;
  /** Artifact names a downstream node depends on (the non-volatile ones, as in our keys). */
  readonly keyedOutputs: ReadonlyArray<string>;
  /** Upstream node ids. */
  readonly deps: ReadonlyArray<string>;
}

/** One DVC stage: its name, shell command, dependency and output paths (relative to the project). */
export interface DvcStage {
  readonly name: string;
  readonly cmd: string;
  readonly deps: ReadonlyArray<string>;
  readonly outs: ReadonlyArray<string>;
}

/** No analytics, no update checks: nothing reaches the network while timing. */
export const dvcEnv = (): NodeJS.ProcessEnv => ({ ...process.env, DVC_NO_ANALYTICS: "1" });

/**
 * DVC's state and index for a project (by default under /var/tmp/dvc, shared and never cleaned): kept beside the
 * project instead, so removing the project's parent removes them too.
 */
export const siteCacheDirOf = (projectDir: string): string => `${path.resolve(projectDir)}.site-cache`;

/** A dvc command run in a project. */
export const dvcCommand = (dvc: string, projectDir: string, args: ReadonlyArray<string>): Command => ({
  file: dvc,
  args,
  cwd: projectDir,
  env: { ...dvcEnv(), DVC_SITE_CACHE_DIR: siteCacheDirOf(projectDir) },
});

/** `dvc --version`, e.g. "3.67.1". */
export const dvcVersion = (dvc: string): string => runCommand({ file: dvc, args: ["--version"], env: dvcEnv() }).trim();

/** Where to find dvc: `$DVC_BIN`, then benchmarks/.venv/bin/dvc, then `dvc` on PATH. Undefined when none runs. */
export const findDvc = (repoRoot: string): string | undefined => {
  const candidates = [process.env.DVC_BIN, path.join(repoRoot, "benchmarks/.venv/bin/dvc"), "dvc"].filter(
    (c): c is string => c !== undefined && c !== "",
  );
  for (const candidate of candidates) {
    if (candidate.includes("/") && !existsSync(candidate)) continue;
    try {
      dvcVersion(candidate);
      return candidate;
    } catch {
      // not installed or broken: try the next one
    }
  }
  return undefined;
};

/** A DVC stage name for a node id: `train[mnist,L=2,seed=0]` -> `train_mnist_L_2_seed_0`. */
const stageName = (id: string): string => id.replace(/[^A-Za-z0-9]+/g, "_").replace(/^_+|_+$/g, "");

/** The DVC stages mirroring the graph (nodes in dependency order): same stages, same edges, one file per artifact. */
export const dvcStages = (nodes: ReadonlyArray<MirrorNode>): DvcStage[] => {
  const names = new Map<string, string>();
  const used = new Set<string>();
  for (const node of nodes) {
    let name = stageName(node.id);
    for (let i = 2; used.has(name); i++) name = `${stageName(node.id)}_${i}`;
    used.add(name);
    names.set(node.id, name);
  }
  const file = (id: string, artifact: string) => `out/${names.get(id)}.${artifact.replace(/[^A-Za-z0-9._-]+/g, "_")}`;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  return nodes.map((node) => {
    const name = names.get(node.id)!;
    const outs = node.outputs.map((a) => file(node.id, a));
    return {
      name,
      cmd: outs.map((o) => `echo ${name} > ${o}`).join(" && "),
      deps: [...new Set(node.deps.flatMap((d) => byId.get(d)!.keyedOutputs.map((a) => file(d, a))))],
      outs,
    };
  });
};

/** The bytes `echo NAME > file` writes. */
const echoed = (stage: DvcStage): string => `${stage.name}\n`;

/** dvc.yaml text for the stages. */
export const dvcYaml = (stages: ReadonlyArray<DvcStage>): string => {
  const lines = ["stages:"];
  for (const s of stages) {
    lines.push(`  ${s.name}:`, `    cmd: ${JSON.stringify(s.cmd)}`);
    if (s.deps.length > 0) lines.push("    deps:", ...s.deps.map((d) => `      - ${d}`));
    lines.push("    outs:", ...s.outs.map((o) => `      - ${o}`));
  }
  return `${lines.join("\n")}\n`;
};

/** Creates a DVC project (no git) in `projectDir` for the stages; runs nothing yet. */
export const writeDvcProject = (dvc: string, projectDir: string, stages: ReadonlyArray<DvcStage>): void => {
  mkdirSync(path.join(projectDir, "out"), { recursive: true });
  runCommand(dvcCommand(dvc, projectDir, ["init", "--no-scm", "-q"]));
  runCommand(dvcCommand(dvc, projectDir, ["config", "core.check_update", "false"]));
  runCommand(dvcCommand(dvc, projectDir, ["config", "core.analytics", "false"]));
  writeFileSync(path.join(projectDir, "dvc.yaml"), dvcYaml(stages));
};

/** Brings the project up to date by running every stage (`dvc repro`). */
export const reproAll = (dvc: string, projectDir: string): void => {
  runCommand(dvcCommand(dvc, projectDir, ["repro", "-q"]));
};

/**
 * Brings the project up to date the way `dvc repro` leaves it, without running DVC: each output file written with
 * what its command would write, copied read-only into .dvc/cache/files/md5/, and dvc.lock (schema 2.0) listing every
 * stage's command, deps and outs (sorted by path) with md5 and size.
 */
export const writeUpToDateState = (projectDir: string, stages: ReadonlyArray<DvcStage>): void => {
  const facts = new Map<string, { md5: string; size: number }>();
  for (const s of stages) {
    const bytes = Buffer.from(echoed(s));
    const md5 = createHash("md5").update(bytes).digest("hex");
    const cached = path.join(projectDir, ".dvc/cache/files/md5", md5.slice(0, 2), md5.slice(2));
    for (const out of s.outs) {
      writeFileSync(path.join(projectDir, out), bytes);
      facts.set(out, { md5, size: bytes.length });
    }
    if (!existsSync(cached)) {
      mkdirSync(path.dirname(cached), { recursive: true });
      copyFileSync(path.join(projectDir, s.outs[0]!), cached);
      chmodSync(cached, 0o444);
    }
  }
  const entry = (p: string) => {
    const f = facts.get(p)!;
    return [`    - path: ${p}`, "      hash: md5", `      md5: ${f.md5}`, `      size: ${f.size}`];
  };
  const lines = ["schema: '2.0'", "stages:"];
  for (const s of stages) {
    lines.push(`  ${s.name}:`, `    cmd: ${JSON.stringify(s.cmd)}`);
    if (s.deps.length > 0) lines.push("    deps:", ...[...s.deps].sort().flatMap(entry));
    lines.push("    outs:", ...[...s.outs].sort().flatMap(entry));
  }
  writeFileSync(path.join(projectDir, "dvc.lock"), `${lines.join("\n")}\n`);
};

/** `dvc status` output of an up-to-date project. */
export const UP_TO_DATE = "Data and pipelines are up to date.";

/** Throws unless DVC reports the project up to date (so a timing never measures a project with work left). */
export const assertUpToDate = (dvc: string, projectDir: string): void => {
  const output = runCommand(dvcCommand(dvc, projectDir, ["status"]));
  if (!output.includes(UP_TO_DATE)) {
    throw new CommandFailed(`dvc status in ${projectDir} does not report "${UP_TO_DATE}":\n${output.slice(0, 2000)}`);
  }
};
