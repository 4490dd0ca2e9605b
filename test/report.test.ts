/**
 * The report stage: every figure is drawn from its data (the specs' inline values against the analysis rows they
 * come from), Figures 2 and 5 have one row per L and section, the files are valid SVG/PNG, the markdown carries the
 * stop-rule table beside the paper's numbers, and the same rows give the same bytes. The comparison with the paper
 * and the README block are checked against hand-made tables whose verdicts are known. Built from synthetic probe
 * rows through the real analysis functions; no training.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Effect, Schema, Stream } from "effect";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { StageIO, type StageIOService } from "../pipeline/stage.ts";
import type { Row } from "../pipeline/table.ts";
import {
  aggregateRuns,
  fitCurves,
  stopRule,
  type AggregateTables,
  type FitRow,
  type ProbeMeasurement,
  type StopRuleRow,
} from "../science/analysis.ts";
import type { TrainRun } from "../science/report/document.ts";
import {
  blockOverlayFigure,
  blockSmallMultiplesFigure,
  depthTicks,
  FIGURE_NAMES,
  logTicks,
  paperFigures,
  powerLawFigure,
  sectionMeasureFigure,
  testErrorFigure,
  trainingCurvesFigure,
  type TrainingEpochRow,
} from "../science/report/figures.ts";
import { stopRuleTable, toMarkdown } from "../science/report/document.ts";
import {
  absoluteDistanceFindings,
  absoluteDistanceSentence,
  comparisonBlocks,
  empiricalDepthFindings,
  empiricalDepthSentence,
  exponentFindings,
  exponentSentence,
  printedPredictionsAreCifarCeilings,
  saturationFindings,
  saturationSentence,
  scaledDistanceFindings,
  summarySentences,
  testErrorFinding,
  testErrorSentence,
} from "../science/report/findings.ts";
import { PAPER_MNIST } from "../science/report/paper.ts";
import { formatDuration, readmeBlock, replaceReadmeBlock } from "../science/report/readme.ts";
import { buildReport, type ReportFile, type ReportInput } from "../science/report/report.ts";
import { DEFAULT_CONFIG, PaperConfig } from "../stages/config.ts";
import { curvePoints } from "../stages/fit.ts";
import { report } from "../stages/report.ts";

const DEPTHS = [1, 2, 4, 8];
const SEEDS = [0, 1];
const EPS = 0.1;

/** Probe rows whose scaled perturbation falls like L^-(0.8 + 0.1 s) in section s and grows along the section. */
const probeRows = (L: number, seed: number): ProbeMeasurement[] => {
  const rows: ProbeMeasurement[] = [];
  for (let section = 0; section < 3; section++) {
    for (let block = 0; block < L; block++) {
      for (let image = 0; image < 4; image++) {
        const position = L === 1 ? 0 : block / (L - 1);
        const scaled =
          (3 + section) * L ** -(0.8 + 0.1 * section) * (1 + 0.5 * position) * (1 + 0.03 * seed) * (1 + 0.01 * image);
        rows.push({ section, block, image, abs: scaled * (2 + section) * (1 + position), scaled, cosine: 0.9 });
      }
    }
  }
  return rows;
};

const tables: AggregateTables = aggregateRuns(
  DEPTHS.flatMap((L) =>
    SEEDS.map((seed) => ({
      run: { dataset: "mnist", depth: L, seed, testError: 0.05 - 0.002 * L + 0.003 * seed },
      rows: probeRows(L, seed),
    })),
  ),
);
const points = curvePoints(tables.sections, tables.sectionsAcrossSeeds);
const fits: FitRow[] = fitCurves(points);
const rules: StopRuleRow[] = stopRule(fits, points, { epsilon: EPS });

const runtime = {
  backend: {
    name: "tensorflow",
    tensorflow: "2.21.0",
    tfjs: "4.22.0",
    threads: { intraOp: 2, interOp: 1 },
    deterministic: false,
  },
};
const trainParams = (L: number, seed: number) => ({
  dataset: "mnist",
  L,
  seed,
  epochs: 1,
  trainSubset: 10_000,
  batchSize: L <= 4 ? 64 : 32,
  augment: false,
  learningRate: 0.1,
  momentum: 0.9,
  weightDecay: 1e-4,
  schedule: "cosine",
});
const runs: TrainRun[] = DEPTHS.flatMap((L) => SEEDS.map((seed) => ({ params: trainParams(L, seed), runtime })));
/** Two epochs per run: loss and test error fall with the epoch and with L. */
const epochRows = (L: number, seed: number) =>
  [1, 2].map((epoch) => ({
    epoch,
    trainLoss: 0.5 / (epoch * L) + 0.01 * seed,
    trainError: 0.1 / (epoch * L),
    testError: 0.05 / (epoch * Math.sqrt(L)),
    learningRate: 0.1 / epoch,
  }));
const timingRows = (L: number) =>
  [1, 2].map((epoch) => ({ epoch, seconds: 10 * L + epoch, imagesPerSecond: 1000 / L }));
const epochs: TrainingEpochRow[] = runs.flatMap(({ params: { L, seed } }) =>
  epochRows(L, seed).map((r) => ({ L, seed, ...r })),
);

const input: ReportInput = {
  datasetName: "MNIST",
  trainSplitSize: 60_000,
  eps: EPS,
  sections: tables.sections,
  sectionsAcrossSeeds: tables.sectionsAcrossSeeds,
  blocksAcrossSeeds: tables.blocksAcrossSeeds,
  fits,
  rules,
  runs,
  epochs,
  paper: PAPER_MNIST,
};

type Values = Array<Record<string, number | string | null>>;
type AnySpec = { name?: string; data?: { values?: Values }; layer?: AnySpec[]; hconcat?: AnySpec[] };

/** The inline data of the layer called `name` anywhere in a spec. */
const layerValues = (spec: unknown, name: string): Values => {
  const visit = (s: AnySpec): Values | undefined => {
    if (s.name === name && s.data?.values !== undefined) return s.data.values;
    for (const child of [...(s.layer ?? []), ...(s.hconcat ?? [])]) {
      const found = visit(child);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const values = visit(spec as AnySpec);
  if (values === undefined) throw new Error(`no layer ${name} with data`);
  return values;
};
const topValues = (spec: unknown): Values => (spec as AnySpec).data!.values!;

const acrossSeeds = (depth: number, section: number) =>
  tables.sectionsAcrossSeeds.find((r) => r.depth === depth && r.section === section)!;

describe("report figures are drawn from their data", () => {
  it("Figure 7: the points are the sections' mean scaled perturbations, the line the fitted power law, the rule eps", () => {
    const spec = powerLawFigure(tables.sectionsAcrossSeeds, fits, EPS);
    const measured = layerValues(spec, "measured");
    expect(measured).toHaveLength(DEPTHS.length * 4);
    for (const L of DEPTHS) {
      for (const section of [0, 1, 2, -1]) {
        const row = acrossSeeds(L, section);
        const point = measured.find((p) => p.L === L && p.section === section)!;
        expect(point.value).toBe(row.meanScaledPerturbation);
        expect(point.low).toBeCloseTo(row.meanScaledPerturbation! - row.meanScaledPerturbationSeedStd!, 12);
        expect(point.high).toBeCloseTo(row.meanScaledPerturbation! + row.meanScaledPerturbationSeedStd!, 12);
      }
    }
    const line = layerValues(spec, "fit");
    for (const section of [0, 1, 2, -1]) {
      const f = fits.find((x) => x.seed === null && x.section === section)!;
      const curve = line.filter((p) => p.section === section);
      expect(curve.map((p) => p.L)).toEqual(DEPTHS);
      for (const p of curve)
        expect(p.fitted as number).toBeCloseTo(Math.exp(f.intercept!) * (p.L as number) ** f.slope!, 12);
    }
    // The sections really differ, so a mixed-up section would show.
    expect(new Set(fits.filter((f) => f.seed === null).map((f) => f.slope!.toFixed(6))).size).toBe(4);
    expect(layerValues(spec, "eps").map((r) => r.eps)).toEqual([EPS]);
  });

  it("Figure 1: test error per L with the seed std", () => {
    const spec = testErrorFigure(tables.sectionsAcrossSeeds, "MNIST", 0.01);
    expect(layerValues(spec, "paper").map((r) => r.bound)).toEqual([0.01]);
    const values = layerValues(spec, "measured");
    expect(values.map((v) => v.L)).toEqual(DEPTHS);
    for (const v of values) {
      const row = acrossSeeds(v.L as number, -1);
      // Seeds 0 and 1 differ by 0.003 in test error: mean + 0.0015, sample std 0.003 / sqrt(2).
      expect(v.value as number).toBeCloseTo(0.05 - 0.002 * (v.L as number) + 0.0015, 12);
      expect(v.std as number).toBeCloseTo(0.003 / Math.SQRT2, 12);
      expect(v.value).toBe(row.testError);
    }
  });

  it("Figures 3, 4, 6: each section measure per L and section, the whole network included", () => {
    for (const measure of ["distance", "meanPerturbation", "scaledDistance"] as const) {
      const values = topValues(sectionMeasureFigure(tables.sectionsAcrossSeeds, measure, "t", "s"));
      expect(values).toHaveLength(DEPTHS.length * 4);
      for (const v of values) expect(v.value).toBe(acrossSeeds(v.L as number, v.section as number)[measure]);
      expect(values.filter((v) => v.section === -1).map((v) => v.sectionLabel)).toEqual(
        DEPTHS.map(() => "whole network"),
      );
    }
  });

  it("Figures 2 and 5: one small multiple per (section, L) with the block values, the overlay's points", () => {
    for (const measure of ["absMean", "scaledMean"] as const) {
      const spec = blockSmallMultiplesFigure(tables.blocksAcrossSeeds, measure, 2);
      const multiples = topValues(spec);
      expect(multiples).toHaveLength(3 * DEPTHS.reduce((a, L) => a + L, 0));
      for (const p of multiples) {
        const block = tables.blocksAcrossSeeds.find(
          (b) => b.section === p.section && b.depth === p.L && b.block === p.block,
        )!;
        expect(p.value).toBe(block[measure]);
        expect(p.position).toBe(block.position);
      }
      // One column per section, one row per L within it, sharing the section's y axis.
      const panels = (
        spec as unknown as {
          hconcat: Array<{ transform: [{ filter: unknown }]; facet: { row: unknown }; resolve: unknown }>;
        }
      ).hconcat;
      expect(panels.map((panel) => panel.transform[0].filter)).toEqual([0, 1, 2].map((s) => `datum.section === ${s}`));
      for (const panel of panels) {
        expect(panel.facet.row).toMatchObject({ field: "L", type: "ordinal" });
        expect(panel.resolve).toEqual({ scale: { y: "shared" } });
      }
      const overlay = topValues(blockOverlayFigure(tables.blocksAcrossSeeds, measure, 2));
      expect(overlay).toEqual(multiples);
    }
  });

  it("discrete depths get discrete colours", () => {
    const colours = JSON.stringify([
      blockSmallMultiplesFigure(tables.blocksAcrossSeeds, "absMean", 2),
      blockOverlayFigure(tables.blocksAcrossSeeds, "absMean", 2),
      trainingCurvesFigure(epochs, "MNIST"),
    ]).match(/"color":\{"field":"L","type":"[a-z]+"/g);
    expect(colours!.length).toBeGreaterThan(3);
    expect(new Set(colours)).toEqual(new Set(['"color":{"field":"L","type":"ordinal"']));
  });

  it("the training curves are every train node's epochs rows", () => {
    const values = topValues(trainingCurvesFigure(epochs, "MNIST"));
    expect(values).toHaveLength(DEPTHS.length * SEEDS.length * 2);
    for (const v of values) {
      const expected = epochRows(v.L as number, v.seed as number).find((r) => r.epoch === v.epoch)!;
      expect(v.trainLoss).toBe(expected.trainLoss);
      expect(v.testError).toBe(expected.testError);
    }
  });

  it("the depth axis labels the trained depths that fit without colliding", () => {
    expect(depthTicks([1, 2, 4, 8, 16, 32])).toEqual([1, 2, 4, 8, 16, 32]);
    const paper = [...Array.from({ length: 35 }, (_, i) => 2 * (i + 1)), 80, 90, 100];
    const ticks = depthTicks(paper, 600, 26);
    expect(ticks.slice(0, 5)).toEqual([2, 4, 6, 8, 10]);
    const pixels = ticks.map((d) => (600 * Math.log(d / 2)) / Math.log(50));
    for (let i = 1; i < pixels.length; i++) expect(pixels[i]! - pixels[i - 1]!).toBeGreaterThanOrEqual(26);
    expect(ticks.length).toBeLessThan(paper.length);
  });

  it("log axes get round 1-2-5 ticks inside the plotted range, at least two", () => {
    expect(logTicks(0.09, 0.95)).toEqual([0.1, 0.2, 0.5]);
    expect(logTicks(0.004, 0.03)).toEqual([0.005, 0.01, 0.02]);
    expect(logTicks(0.12, 0.35)).toEqual([0.15, 0.2, 0.3]);
    expect(logTicks(1e-5, 10)).toEqual([1e-5, 3e-5, 1e-4, 3e-4, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10]);
    expect(logTicks(0, 1)).toEqual([]);
  });

  it("the report has every declared figure, in order", () => {
    const figures = paperFigures({ ...input, paperTestErrorBound: 0.01 });
    expect(figures.map((f) => f.name)).toEqual([...FIGURE_NAMES]);
    expect(Object.keys(report.outputs).sort()).toEqual(
      [
        "report.md",
        "report.html",
        ...FIGURE_NAMES.flatMap((n) => [`${n}.svg`, `${n}.png`]),
        ...["sectionsAcrossSeeds", "blocksAcrossSeeds", "fits", "rules", "trainingEpochs", "trainingTimes"],
      ].sort(),
    );
  });
});

describe("the report stage", () => {
  const outDir = mkdtempSync(join(tmpdir(), "report-"));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));
  const read = (name: string) => readFileSync(join(outDir, name));
  let files: ReportFile[] = [];
  let warnings: string[] = [];
  const written = new Map<string, unknown[]>();

  beforeAll(async () => {
    const trainInputs = runs.map((r) => `train[L=${r.params.L},seed=${r.params.seed}]`);
    const tablesByInput: Record<string, Record<string, unknown[]>> = {
      aggregate: {
        sections: [...tables.sections],
        sectionsAcrossSeeds: [...tables.sectionsAcrossSeeds],
        blocksAcrossSeeds: [...tables.blocksAcrossSeeds],
      },
      fit: { fits },
      stopRule: { rules },
      ...Object.fromEntries(
        runs.map(({ params: { L, seed } }, i) => [
          trainInputs[i],
          { epochs: epochRows(L, seed), timings: timingRows(L) },
        ]),
      ),
    };
    const io: StageIOService = {
      inputNames: ["aggregate", "fit", "stopRule", ...trainInputs],
      inputStage: (name) => (trainInputs.includes(name) ? "train" : name),
      inputParams: (name) => runs[trainInputs.indexOf(name)]?.params,
      inputRuntime: (name) => (trainInputs.includes(name) ? runtime : {}),
      readTable: (name, artifact) => Effect.succeed((tablesByInput[name]?.[artifact] ?? []) as Row[]),
      streamTable: () => Stream.die("not used"),
      inputPath: () => Effect.die("not used"),
      writeTable: (artifact, rows) => Effect.sync(() => void written.set(artifact, [...(rows as Iterable<unknown>)])),
      outputPath: (artifact) => join(outDir, artifact),
      scratchDir: Effect.die("not used"),
      log: () => Effect.void,
      progress: () => Effect.void,
      recordRuntime: () => Effect.void,
    };
    const warn = vi.spyOn(console, "warn");
    await Effect.runPromise(report.run({ dataset: "mnist", eps: EPS }).pipe(Effect.provideService(StageIO, io)));
    files = await buildReport(input);
    warnings = warn.mock.calls.map((c) => c.join(" "));
    warn.mockRestore();
  });

  it("renders without Vega or Vega-Lite warnings", () => {
    expect(warnings).toEqual([]);
  });

  it("writes the tables it was made from beside the report, each train node's rows with its L and seed", () => {
    expect(written.get("fits")).toEqual(fits);
    expect(written.get("rules")).toEqual(rules);
    expect(written.get("sectionsAcrossSeeds")).toEqual(tables.sectionsAcrossSeeds);
    expect(written.get("blocksAcrossSeeds")).toEqual(tables.blocksAcrossSeeds);
    expect(written.get("trainingEpochs")).toEqual(epochs);
    const times = runs.flatMap(({ params: { L, seed } }) => timingRows(L).map((r) => ({ L, seed, ...r })));
    expect(written.get("trainingTimes")).toEqual(times);
    expect(report.outputs.trainingTimes).toMatchObject({ kind: "table", volatile: true });
  });

  it("depends on aggregate, fit, stop-rule and every train node of the data set", () => {
    const config = Schema.decodeUnknownSync(PaperConfig)({ ...DEFAULT_CONFIG, seeds: [0, 1] });
    const inputs = report.inputs({ dataset: "mnist", eps: 0.1 }, config);
    expect(Object.keys(inputs).filter((k) => k.startsWith("train["))).toHaveLength(config.mnist.depths.length * 2);
    expect(inputs.stopRule).toEqual({
      stage: "stop-rule",
      params: { dataset: "mnist", eps: 0.1, saturationTolerance: config.analysis.saturationTolerance },
    });
    expect(inputs.aggregate.stage).toBe("aggregate");
    expect(inputs.fit.stage).toBe("fit");
  });

  it("writes every declared output; SVGs are SVG documents and PNGs are PNGs", () => {
    for (const name of FIGURE_NAMES) {
      const svg = read(`${name}.svg`).toString("utf8");
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), name).toBe(true);
      expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
      const png = read(`${name}.png`);
      expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      // IHDR: the PNG is the SVG at twice its size.
      const width = Number(/^<svg[^>]* width="(\d+(?:\.\d+)?)"/.exec(svg)![1]);
      expect(png.readUInt32BE(16)).toBe(Math.round(2 * width));
    }
  });

  it("the markdown has the stop-rule table beside the paper's numbers, and references the PNGs by file name", () => {
    const md = read("report.md").toString("utf8");
    const paper = { 0: [4.11, 40], 1: [3.12, 32], 2: [4.58, 40] } as const;
    for (const section of [0, 1, 2] as const) {
      const ours = rules.find((r) => r.seed === null && r.section === section)!;
      const [dScaled, empirical] = paper[section];
      const predicted = Math.ceil(dScaled / EPS - 1e-9);
      const stopRuleSection = md.slice(md.indexOf("## Stopping rule"));
      const start = `| section ${section + 1} | ${ours.scaledDistance!.toPrecision(4)}`;
      const row = stopRuleSection.split("\n").find((l) => l.startsWith(start));
      expect(row, `stop-rule row of section ${section + 1}`).toBeDefined();
      expect(row!.endsWith(`| ${dScaled.toFixed(2)} | ${predicted} | ${empirical} |`)).toBe(true);
      expect(row).toContain(`| ${Math.ceil(ours.scaledDistance! / EPS)} |`);
    }
    expect(md).toContain("| whole network |");
    for (const name of FIGURE_NAMES) expect(md).toContain(`](${name}.png)`);
    expect(md).toContain("| batch size | 64 (L = 1..4); 32 (L = 8) |");
    expect(md).toContain("tensorflow (TensorFlow 2.21.0, 2 intra-op / 1 inter-op threads)");
  });

  it("the HTML is self-contained: every figure inline, ids unique, nothing fetched", () => {
    const html = read("report.html").toString("utf8");
    expect(html.match(/<svg /g)).toHaveLength(FIGURE_NAMES.length);
    expect(html).not.toMatch(/<img|<link|<script|src=|https?:\/\/(?!www\.w3\.org)/);
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
    for (const ref of html.matchAll(/url\(#([^)]+)\)/g)) expect(ids).toContain(ref[1]);
  });

  it("the same rows give the same bytes", async () => {
    const again = await buildReport(input);
    expect(again.map((f) => f.name)).toEqual(files.map((f) => f.name));
    for (const [i, f] of files.entries())
      expect(Buffer.from(again[i]!.contents).equals(Buffer.from(f.contents)), f.name).toBe(true);
    // And the stage wrote exactly what buildReport returns.
    for (const f of files) expect(read(f.name).equals(Buffer.from(f.contents)), f.name).toBe(true);
  });
});

/**
 * Hand-made means over seeds at L = 1..32 (doubling), one seed, chosen so that each rule has a known answer:
 * section 1 falls like L^-0.3 (shallower than -1, never below eps), section 2 like 3.1/L with +-3% wiggle (consistent
 * with -1, first below eps at L = 32), section 3 like 12 L^-1.6 (steeper, first below eps at L = 32).
 */
const HAND_DEPTHS = [1, 2, 4, 8, 16, 32];
const WIGGLE = [1, 1.03, 0.97, 1.03, 0.97, 1];
const handMeanScaled = (section: number, L: number, i: number) =>
  section === 0 ? 0.9 * L ** -0.3 : section === 1 ? (3.1 / L) * WIGGLE[i]! : 12 * L ** -1.6;
/** d levels off from L = 8 in section 1 and keeps growing in the others. */
const handDistance = (section: number, L: number) => (section === 0 ? Math.min(100, 12.5 * L) : 20 * L);
const handRows = (testError: (L: number) => number) =>
  HAND_DEPTHS.flatMap((L, i) =>
    [0, 1, 2, -1].map((section) => {
      const blocks = section === -1 ? 3 * L : L;
      const meanScaled =
        section === -1 ? [0, 1, 2].reduce((a, s) => a + handMeanScaled(s, L, i), 0) / 3 : handMeanScaled(section, L, i);
      const distance =
        section === -1 ? [0, 1, 2].reduce((a, s) => a + handDistance(s, L), 0) : handDistance(section, L);
      return {
        dataset: "mnist",
        depth: L,
        section,
        blocks,
        seeds: 1,
        distance,
        distanceSeedStd: null,
        scaledDistance: meanScaled * blocks,
        scaledDistanceSeedStd: null,
        meanPerturbation: distance / blocks,
        meanPerturbationSeedStd: null,
        meanScaledPerturbation: meanScaled,
        meanScaledPerturbationSeedStd: null,
        testError: testError(L),
        testErrorSeedStd: null,
      };
    }),
  );
const handInput = (testError: (L: number) => number = (L) => (L === 1 ? 0.012 : 0.008), paper = PAPER_MNIST) => {
  const sectionsAcrossSeeds = handRows(testError);
  const handFits = fitCurves(sectionsAcrossSeeds);
  const handRules = stopRule(handFits, sectionsAcrossSeeds, { epsilon: EPS });
  return { eps: EPS, sectionsAcrossSeeds, fits: handFits, rules: handRules, paper };
};

describe("the comparison with the paper is computed from the tables", () => {
  it("test error: agrees only when every depth is under the paper's 1%", () => {
    expect(testErrorFinding(handInput(() => 0.008))).toMatchObject({ verdict: "agrees", above: [] });
    expect(testErrorFinding(handInput())).toMatchObject({ verdict: "partly agrees", above: [1] });
    expect(testErrorFinding(handInput(() => 0.02)).verdict).toBe("does not agree");
    expect(testErrorSentence(handInput())).toBe(
      "Test error: 0.80% to 1.20%; at or above 1% at L = 1 (1.20% at L = 1); the paper's Figure 1 has MNIST well " +
        "under 1% at every depth: partly agrees.",
    );
  });

  it("the exponent: the CI against -1 decides consistent, shallower or steeper", () => {
    const findings = exponentFindings(handInput());
    expect(findings.map((f) => f.section)).toEqual([0, 1, 2, -1]);
    expect(findings.slice(0, 3).map((f) => f.verdict)).toEqual([
      "shallower than -1",
      "consistent with -1",
      "steeper than -1",
    ]);
    expect(findings[0]!.slope!).toBeCloseTo(-0.3, 10);
    expect(findings[2]!.slope!).toBeCloseTo(-1.6, 10);
    expect(findings[1]!.ciLow!).toBeLessThan(-1);
    expect(findings[1]!.ciHigh!).toBeGreaterThan(-1);
    // Two depths give a slope but no interval.
    const two = handInput();
    const shallow = two.sectionsAcrossSeeds.filter((r) => r.depth <= 2);
    expect(exponentFindings({ ...two, fits: fitCurves(shallow) }).map((f) => f.verdict)).toEqual(
      Array(4).fill("no confidence interval"),
    );
    expect(exponentSentence(handInput())).toContain(
      "shallower than -1 in section 1; consistent with -1 in section 2; steeper than -1 in section 3",
    );
  });

  it("empirical depth: the paper's inside (previous trained L, ours] agrees; '> 32' when eps is not reached", () => {
    const findings = empiricalDepthFindings(handInput());
    // Section 1 never gets below eps: "> 32", and the paper's 40 lies beyond 32 too.
    expect(findings[0]).toMatchObject({ ours: null, maxTrained: 32, paper: 40 });
    expect(findings[0]!.verdict).toBe("not reached, consistent with the paper");
    // Section 2 first below eps at 32: the crossing lies in (16, 32], where the paper's 32 is.
    expect(findings[1]).toMatchObject({ ours: 32, previousTrained: 16, paper: 32, verdict: "agrees" });
    // Section 3 first below eps at 32 too, but the paper needs 40.
    expect(findings[2]).toMatchObject({ ours: 32, paper: 40, verdict: "earlier than the paper" });
    // A paper reaching eps at or before our previous depth, or before our deepest when we never do: later.
    const early = { ...PAPER_MNIST, empiricalDepth: [20, 16, 40] as const };
    expect(empiricalDepthFindings(handInput(undefined, early)).map((f) => f.verdict)).toEqual([
      "later than the paper",
      "later than the paper",
      "earlier than the paper",
    ]);
    const md = toMarkdown(comparisonBlocks(handInput()));
    expect(md).toContain("| section 1 | > 32 | (32, ...) | 40 | not reached, consistent with the paper |");
    expect(md).toContain("| section 2 | 32 | (16, 32] | 32 | agrees |");
    expect(empiricalDepthSentence(handInput())).toContain("> 32 / 32 / 32 against the paper's 40 / 32 / 40");
  });

  it("d_scaled: both estimators, the depths they predict, the paper's computed and printed depths", () => {
    const findings = scaledDistanceFindings(handInput());
    // Saturated = mean of the deepest third (L = 16, 32): section 2 is 3.1 * (0.97 + 1) / 2 = 3.0535 against 3.12.
    expect(findings[1]!.saturated!).toBeCloseTo(3.0535, 10);
    expect(findings[1]).toMatchObject({ predictedSaturated: 31, paper: 3.12, paperPredicted: 32, paperPrinted: 39 });
    expect(findings[1]!.verdict).toBe("agrees");
    expect(findings.map((f) => f.paperPredicted)).toEqual([42, 32, 46]);
    expect(findings.map((f) => f.paperPrinted)).toEqual([37, 39, 43]);
    expect(findings[0]!.verdict).toBe("above the paper");
    expect(findings[2]!.verdict).toBe("below the paper");
    // The fixed-slope estimate is the geometric mean of d_scaled over all fitted depths.
    const section3 = HAND_DEPTHS.map((L) => 12 * L ** -0.6);
    expect(findings[2]!.fixedSlope!).toBeCloseTo(Math.exp(section3.reduce((a, d) => a + Math.log(d), 0) / 6), 10);
    expect(findings[2]!.predictedFixedSlope).toBe(Math.ceil(findings[2]!.fixedSlope! / EPS));
    // Section 1's d_scaled = 0.9 L^0.7 still rises from 16 to 32 by more than 10%; section 3's falls.
    expect(findings.map((f) => f.stillRising)).toEqual([true, false, false]);
    expect(printedPredictionsAreCifarCeilings(0.1)).toBe(true);
    expect(printedPredictionsAreCifarCeilings(0.2)).toBe(false);
    expect(toMarkdown(comparisonBlocks(handInput()))).toContain("these are the ceilings of its CIFAR-10 d_scaled");
  });

  it("saturation of d and d_scaled, and the absolute distances against the paper's", () => {
    const saturation = saturationFindings(handInput());
    expect(saturation.map((f) => f.distanceFrom)).toEqual([8, null, null]);
    // Section 2's d_scaled = 3.1 * wiggle stays within 10% of its value at 32 from L = 1 on.
    expect(saturation.map((f) => f.scaledDistanceFrom)).toEqual([null, 1, null]);
    expect(saturationSentence(handInput())).toContain(
      "d levels off in section 1 from L = 8 but not in sections 2 and 3; d_scaled levels off in section 2 from L = 1 " +
        "but not in sections 1 and 3: earlier than the paper's saturation near L = 70-80",
    );
    const absolute = absoluteDistanceFindings(handInput());
    expect(absolute.map((f) => [f.ours, f.paper, f.deepest])).toEqual([
      [100, 130, 32],
      [640, 160, 32],
      [640, 200, 32],
    ]);
    expect(absoluteDistanceSentence(handInput())).toContain("(0.77x / 4.00x / 3.20x); not a test of the claim");
  });

  it("a rerun with other numbers rewrites the statements", () => {
    const before = summarySentences(handInput());
    const after = summarySentences(handInput(() => 0.003));
    expect(after[0]).toContain("below 1% at every trained depth");
    expect(after[0]).not.toBe(before[0]);
    expect(after.slice(1)).toEqual(before.slice(1));
  });
});

describe("the README block", () => {
  const times = HAND_DEPTHS.slice(0, 4).flatMap((L) =>
    [1, 2, 3].map((epoch) => ({ L, seed: 0, epoch, seconds: 100 * L })),
  );
  const partial = () => {
    const all = handInput();
    const sectionsAcrossSeeds = all.sectionsAcrossSeeds.filter((r) => r.depth <= 8);
    const shallowFits = fitCurves(sectionsAcrossSeeds);
    return {
      ...all,
      name: "mnist-cpu",
      datasetName: "MNIST",
      reportDir: "docs/reports/mnist-cpu",
      command: "npx pipeline run report --preset mnist-cpu --data-dir ../shared/datasets --out docs/reports/mnist-cpu",
      configuredDepths: HAND_DEPTHS,
      sectionsAcrossSeeds,
      fits: shallowFits,
      rules: stopRule(shallowFits, sectionsAcrossSeeds, { epsilon: EPS }),
      trainingTimes: times,
    };
  };

  it("comes from the tables: figure, stop-rule table, statements, test error and time per L, the command", () => {
    const input = partial();
    const block = readmeBlock(input);
    expect(block.startsWith("<!-- report:mnist-cpu:start -->\n")).toBe(true);
    expect(block.endsWith("\n<!-- report:mnist-cpu:end -->")).toBe(true);
    expect(block).toContain("## Result: MNIST, L = 1, 2, 4 and 8 (preset mnist-cpu)");
    expect(block).toContain("**Partial result**: the depths trained so far are L = 1, 2, 4 and 8; L = 16 and 32");
    expect(block).toContain("](docs/reports/mnist-cpu/fig7-mean-scaled-perturbation.png)");
    expect(block).toContain(toMarkdown([{ kind: "table", table: stopRuleTable(input.rules) }]).trim());
    for (const sentence of summarySentences(input)) expect(block).toContain(`- ${sentence}`);
    // Time per L: three epochs of 100 L seconds; in all 300 * (1 + 2 + 4 + 8) s = 75 min.
    expect(block).toContain("| 8 | 0.80% | 40 min 0 s |");
    expect(block).toContain("measured: 1 h 15 min of training");
    expect(block).toContain(`\`\`\`sh\n${input.command}\n\`\`\``);
    expect(readmeBlock({ ...input, configuredDepths: [1, 2, 4, 8] })).not.toContain("Partial");
  });

  it("replaces only what lies between its markers, and refuses a README without them", () => {
    const readme = "# title\n\nintro\n<!-- report:mnist-cpu:start -->\nold\n<!-- report:mnist-cpu:end -->\n\n## rest\n";
    const block = readmeBlock(partial());
    const once = replaceReadmeBlock(readme, "mnist-cpu", block);
    expect(once).toBe(`# title\n\nintro\n${block}\n\n## rest\n`);
    expect(replaceReadmeBlock(once, "mnist-cpu", block)).toBe(once);
    const missing = /needs one "<!-- report:mnist-cpu:start -->"/;
    expect(() => replaceReadmeBlock("# title\n", "mnist-cpu", block)).toThrow(missing);
  });

  it("the committed README's generated blocks are what the committed report tables make", async () => {
    const dir = mkdtempSync(join(tmpdir(), "readme-"));
    try {
      const copy = join(dir, "README.md");
      const committed = readFileSync("README.md", "utf8");
      const emptied = committed.replace(
        /(<!-- report:[\w-]+:start -->)[\s\S]*?(<!-- report:[\w-]+:end -->)/g,
        "$1\n$2",
      );
      writeFileSync(copy, emptied);
      // Asynchronous, so the worker keeps answering vitest while the scripts run.
      const regenerate = (...args: string[]) =>
        promisify(execFile)(process.execPath, [
          "--import",
          "tsx",
          "scripts/readme-report.ts",
          ...args,
          "--readme",
          copy,
        ]);
      await regenerate("--preset", "mnist-cpu");
      await regenerate("--preset", "smoke", "--report", "docs/smoke-report", "--brief");
      expect(readFileSync(copy, "utf8")).toBe(committed);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it("durations read as hours and minutes", () => {
    expect(formatDuration(40)).toBe("40 s");
    expect(formatDuration(725)).toBe("12 min 5 s");
    expect(formatDuration(9060)).toBe("2 h 31 min");
  });
});
