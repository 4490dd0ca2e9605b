/**
 * Smoke tests of the planning benchmark (benchmarks/planning.ts) at tiny sizes, so its code keeps working: the
 * benchmark DAGs have the intended shape, a quick run produces complete results, and the DVC mirror is what
 * `dvc repro` itself would produce (when dvc is installed).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../pipeline/config.ts";
import { buildDag } from "../../pipeline/graph.ts";
import { paperPipeline } from "../../stages/index.ts";
import { mirrorOf, parseCliTimes, runPlanningBenchmark } from "../planning.ts";
import {
  dvcCommand,
  dvcStages,
  findDvc,
  reproAll,
  UP_TO_DATE,
  writeDvcProject,
  writeUpToDateState,
} from "../lib/dvc.ts";
import { paperShapedPipeline } from "../lib/paper-shaped.ts";
import { median, repoRoot, runCommand } from "../lib/measure.ts";
import { layeredEdgeCount, layeredPipeline, layerWidth } from "../lib/trivial-stages.ts";

const scratch = mkdtempSync(path.join(tmpdir(), "bench-planning-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const layeredDag = (nodes: number) =>
  buildDag(layeredPipeline.stages, loadConfig(layeredPipeline, { assignments: [`nodes=${nodes}`] }).config, "all");

describe("benchmark DAGs", () => {
  it("the layered DAG has the requested node count, and every non-source node reads 2 or 3 nodes of the layer above", () => {
    const nodes = 50;
    const dag = layeredDag(nodes);
    const width = layerWidth(nodes);
    expect(dag.order).toHaveLength(nodes);
    let edges = 0;
    for (const node of dag.nodes.values()) {
      const { layer } = node.params as { layer: number; index: number };
      const deps = [...new Set(Object.values(node.deps))];
      edges += deps.length;
      if (layer === 0) {
        expect(deps).toEqual([]);
        continue;
      }
      expect(deps.length === 2 || deps.length === 3).toBe(true);
      for (const dep of deps) expect((dag.nodes.get(dep)!.params as { layer: number }).layer).toBe(layer - 1);
    }
    expect([...dag.nodes.values()].filter((n) => Object.keys(n.deps).length === 0)).toHaveLength(width);
    expect(edges).toBe(layeredEdgeCount(nodes));
  });

  it("the paper-shaped DAG is the paper pipeline's DAG: same nodes, same order, same edges", () => {
    const shaped = buildDag(
      paperShapedPipeline.stages,
      loadConfig(paperShapedPipeline, { preset: "paper" }).config,
      "all",
    );
    const real = buildDag(paperPipeline.stages, loadConfig(paperPipeline, { preset: "paper" }).config, "all");
    expect(shaped.order).toEqual(real.order);
    for (const id of real.order) expect(shaped.nodes.get(id)!.deps).toEqual(real.nodes.get(id)!.deps);
    expect(shaped.order.filter((id) => id.startsWith("train["))).toHaveLength(2 * 38); // 38 depths, 2 data sets
  });

  it("the DVC mirror has one stage per node, one output per artifact, and depends on exactly the upstream non-volatile files", () => {
    const dag = buildDag(
      paperShapedPipeline.stages,
      loadConfig(paperShapedPipeline, { preset: "smoke" }).config,
      "all",
    );
    const mirror = mirrorOf(dag);
    const stages = dvcStages(mirror);
    expect(stages).toHaveLength(dag.order.length);
    const outsOf = new Map(stages.map((s, i) => [mirror[i]!.id, s.outs]));
    stages.forEach((stage, i) => {
      const node = dag.nodes.get(mirror[i]!.id)!;
      expect(stage.outs).toHaveLength(Object.keys(node.stage.outputs).length);
      const upstreamFiles = [...new Set(Object.values(node.deps))].flatMap((dep) =>
        outsOf.get(dep)!.filter((file) => !file.endsWith(".timings")),
      );
      expect([...stage.deps].sort()).toEqual([...new Set(upstreamFiles)].sort());
      for (const out of stage.outs) expect(stage.cmd).toContain(`> ${out}`);
    });
  });
});

describe("helpers", () => {
  it("median of odd and even counts", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it("parseCliTimes reads a fully cached run and rejects one with work left", () => {
    const cached =
      "plan all: 14 nodes, 14 cached, 0 to run, 0 pending (29 ms)\nsummary: 0 ran, 14 cached, 0 failed, 0 skipped in 0.10 s\n";
    expect(parseCliTimes(cached)).toEqual({ planMs: 29, runMs: 100 });
    const stale =
      "plan all: 14 nodes, 13 cached, 1 to run, 0 pending (29 ms)\nsummary: 1 ran, 13 cached, 0 failed, 0 skipped in 0.50 s\n";
    expect(() => parseCliTimes(stale)).toThrow(/not a fully cached run/);
  });
});

describe("runPlanningBenchmark --quick", () => {
  it("populates, plans and times tiny DAGs in process and as whole processes", async () => {
    const lines: string[] = [];
    const result = await runPlanningBenchmark({
      quick: true,
      layeredSizes: [12],
      repeats: 2,
      processRepeats: 1,
      dvc: "skip",
      workDir: path.join(scratch, "quick"),
      log: (line) => lines.push(line),
    });
    const smokeNodes = buildDag(paperPipeline.stages, loadConfig(paperPipeline, { preset: "smoke" }).config, "all")
      .order.length;
    expect(result.dags.map((d) => [d.name, d.nodes])).toEqual([
      ["paper (preset smoke)", smokeNodes],
      ["layered 12", 12],
    ]);
    for (const d of result.dags) {
      expect(d.inProcess.plan.runs).toBe(2);
      expect(d.inProcess.planPerNodeMs).toBeCloseTo(d.inProcess.plan.medianMs / d.nodes, 9);
      expect([d.process!.runAll.runs, d.process!.status.runs]).toEqual([1, 1]);
      expect(d.dvc).toEqual({ skipped: "dvc: skip" });
    }
    const realCli = result.dags[0]!.process!.realCli!;
    // Every whole-process run's output was parsed as a fully cached run (parseCliTimes throws otherwise).
    expect([realCli.sources.runs, realCli.bundle.runs, realCli.npx.runs]).toEqual([1, 1, 1]);
    expect(lines.join("\n")).toMatch(/Fully cached `run all`/);
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
  });
});

const dvc = findDvc(repoRoot);

describe.skipIf(dvc === undefined)(
  "DVC mirror (needs dvc in benchmarks/.venv, $DVC_BIN or PATH; skipped without)",
  () => {
    it("the lockfile setup is what `dvc repro` writes, and DVC finds nothing to do", () => {
      const stages = dvcStages(mirrorOf(layeredDag(4)));
      const byRepro = path.join(scratch, "dvc-repro");
      const byLockfile = path.join(scratch, "dvc-lockfile");
      writeDvcProject(dvc!, byRepro, stages);
      reproAll(dvc!, byRepro);
      writeDvcProject(dvc!, byLockfile, stages);
      writeUpToDateState(byLockfile, stages);
      // dvc.lock facts (stage names, paths, hashes, sizes) in order; the YAML line folding of long commands may differ.
      const facts = (dir: string) =>
        readFileSync(path.join(dir, "dvc.lock"), "utf8")
          .split("\n")
          .filter((line) => /^ {2}\w+:$|^\s+- path:|^\s+md5:|^\s+size:/.test(line))
          .map((line) => line.trim());
      expect(facts(byLockfile)).toEqual(facts(byRepro));
      expect(facts(byLockfile).filter((f) => f.startsWith("md5:"))).toHaveLength(6); // 4 outputs + the 2 inputs of node 1.0
      expect(runCommand(dvcCommand(dvc!, byLockfile, ["status"]))).toContain(UP_TO_DATE);
      expect(runCommand(dvcCommand(dvc!, byLockfile, ["repro"]))).not.toMatch(/Running stage/);
    });
  },
);
