/**
 * The report stage: every figure is drawn from its data (the specs' inline values against the analysis rows they
 * come from), the ridgeline is ordered and offset by rank of L, the files are valid SVG/PNG, the markdown carries the
 * stop-rule table beside the paper's numbers, and the same rows give the same bytes. Built from synthetic probe
 * rows through the real analysis functions; no training.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Schema } from "effect";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { StageIO, type Row, type StageIOService } from "../pipeline/stage.ts";
import {
  aggregateRuns,
  fitCurves,
  stopRule,
  type AggregateTables,
  type FitRow,
  type ProbeRow,
  type StopRuleRow,
} from "../science/analysis.ts";
import type { TrainRun } from "../science/report/document.ts";
import {
  blockOverlayFigure,
  blockSmallMultiplesFigure,
  FIGURE_NAMES,
  logTicks,
  paperFigures,
  powerLawFigure,
  sectionMeasureFigure,
  testErrorFigure,
  trainingCurvesFigure,
  type TrainingEpochRow,
} from "../science/report/figures.ts";
import { PAPER_MNIST } from "../science/report/paper.ts";
import { buildReport, type ReportFile, type ReportInput } from "../science/report/report.ts";
import { DEFAULT_CONFIG, PaperConfig } from "../stages/config.ts";
import { curvePoints } from "../stages/fit.ts";
import { report } from "../stages/report.ts";

const DEPTHS = [1, 2, 4, 8];
const SEEDS = [0, 1];
const EPS = 0.1;

/** Probe rows whose scaled perturbation falls like L^-(0.8 + 0.1 s) in section s and grows along the section. */
const probeRows = (L: number, seed: number): ProbeRow[] => {
  const rows: ProbeRow[] = [];
  for (let section = 0; section < 3; section++) {
    for (let block = 0; block < L; block++) {
      for (let image = 0; image < 4; image++) {
        const position = L === 1 ? 0 : block / (L - 1);
        const scaled = (3 + section) * L ** -(0.8 + 0.1 * section) * (1 + 0.5 * position) * (1 + 0.03 * seed) * (1 + 0.01 * image);
        rows.push({ section, block, image, abs: scaled * (2 + section) * (1 + position), scaled, cosine: 0.9 });
      }
    }
  }
  return rows;
};

const tables: AggregateTables = aggregateRuns(
  DEPTHS.flatMap((L) =>
    SEEDS.map((seed) => ({ run: { dataset: "mnist", depth: L, seed, testError: 0.05 - 0.002 * L + 0.003 * seed }, rows: probeRows(L, seed) })),
  ),
);
const points = curvePoints(tables.sections as unknown as Row[], tables.sectionsAcrossSeeds as unknown as Row[]);
const fits: FitRow[] = fitCurves(points);
const rules: StopRuleRow[] = stopRule(fits, points, { epsilon: EPS });

const runtime = { backend: { name: "tensorflow", tensorflow: "2.21.0", tfjs: "4.22.0", threads: { intraOp: 2, interOp: 1 }, deterministic: false } };
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
const timingRows = (L: number) => [1, 2].map((epoch) => ({ epoch, seconds: 10 * L + epoch, imagesPerSecond: 1000 / L }));
const epochs: TrainingEpochRow[] = runs.flatMap(({ params: { L, seed } }) => epochRows(L, seed).map((r) => ({ L, seed, ...r })));

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
      for (const p of curve) expect(p.fitted as number).toBeCloseTo(Math.exp(f.intercept!) * (p.L as number) ** f.slope!, 12);
    }
    // The sections really differ, so a mixed-up section would show.
    expect(new Set(fits.filter((f) => f.seed === null).map((f) => f.slope!.toFixed(6))).size).toBe(4);
    expect(layerValues(spec, "eps").map((r) => r.eps)).toEqual([EPS]);
  });

  it("Figure 1: test error per L with the seed std", () => {
    const values = topValues(testErrorFigure(tables.sectionsAcrossSeeds, "MNIST"));
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
      expect(values.filter((v) => v.section === -1).map((v) => v.sectionLabel)).toEqual(DEPTHS.map(() => "whole network"));
    }
  });

  it("Figures 2 and 5: one small multiple per (section, L) with the block values, the same points as the overlay", () => {
    for (const measure of ["absMean", "scaledMean"] as const) {
      const spec = blockSmallMultiplesFigure(tables.blocksAcrossSeeds, measure, 2);
      const multiples = topValues(spec);
      expect(multiples).toHaveLength(3 * DEPTHS.reduce((a, L) => a + L, 0));
      for (const p of multiples) {
        const block = tables.blocksAcrossSeeds.find((b) => b.section === p.section && b.depth === p.L && b.block === p.block)!;
        expect(p.value).toBe(block[measure]);
        expect(p.position).toBe(block.position);
      }
      // One column per section, one row per L within it, sharing the section's y axis.
      const panels = (spec as unknown as { hconcat: Array<Record<string, any>> }).hconcat;
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
        runs.map(({ params: { L, seed } }, i) => [trainInputs[i], { epochs: epochRows(L, seed), timings: timingRows(L) }]),
      ),
    };
    const io: StageIOService = {
      inputNames: ["aggregate", "fit", "stopRule", ...trainInputs],
      inputParams: (name) => runs[trainInputs.indexOf(name)]?.params,
      inputRuntime: (name) => (trainInputs.includes(name) ? runtime : {}),
      readTable: (name, artifact) => Effect.succeed((tablesByInput[name]?.[artifact] ?? []) as Row[]),
      forEachRowBatch: () => Effect.die("not used"),
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
    expect(written.get("trainingTimes")).toEqual(runs.flatMap(({ params: { L, seed } }) => timingRows(L).map((r) => ({ L, seed, ...r }))));
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
    expect(inputs.aggregate!.stage).toBe("aggregate");
    expect(inputs.fit!.stage).toBe("fit");
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
      const row = md.split("\n").find((l) => l.startsWith(`| section ${section + 1} | ${ours.scaledDistance!.toPrecision(4)}`));
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
    for (const [i, f] of files.entries()) expect(Buffer.from(again[i]!.contents).equals(Buffer.from(f.contents)), f.name).toBe(true);
    // And the stage wrote exactly what buildReport returns.
    for (const f of files) expect(read(f.name).equals(Buffer.from(f.contents)), f.name).toBe(true);
  });
});
