/**
 * The whole report from the analysis rows: the figures rendered to SVG and PNG, and report.md / report.html with
 * the configuration and the tables. Returns the files' names and bytes; the caller decides where they go.
 */
import type { BlockSeedSummaryRow, FitRow, SectionSeedSummaryRow, SectionStatsRow, StopRuleRow } from "../analysis.ts";
import {
  configurationTable,
  fitTable,
  stopRuleTable,
  testErrorTable,
  toHtml,
  toMarkdown,
  type Block,
  type TrainRun,
} from "./document.ts";
import { comparisonBlocks } from "./findings.ts";
import { paperFigures, type FigureSpec, type TrainingEpochRow } from "./figures.ts";
import type { PaperMnistReference } from "./paper.ts";
import { renderSvg, svgToPng } from "./render.ts";

export interface ReportInput {
  /** e.g. "MNIST". */
  readonly datasetName: string;
  /** Images in the full training split. */
  readonly trainSplitSize: number;
  readonly eps: number;
  readonly sections: readonly SectionStatsRow[];
  readonly sectionsAcrossSeeds: readonly SectionSeedSummaryRow[];
  readonly blocksAcrossSeeds: readonly BlockSeedSummaryRow[];
  readonly fits: readonly FitRow[];
  readonly rules: readonly StopRuleRow[];
  readonly runs: readonly TrainRun[];
  /** Every train node's per-epoch metrics. */
  readonly epochs: readonly TrainingEpochRow[];
  /** The paper's numbers to compare with (MNIST), or null: no comparison section. */
  readonly paper: PaperMnistReference | null;
}

export interface ReportFile {
  readonly name: string;
  readonly contents: string | Uint8Array;
}

/** The two documents; buildReport returns them first, then each figure's .svg and .png in FIGURE_NAMES order. */
export const REPORT_DOCUMENTS = ["report.md", "report.html"] as const;

/** The document blocks around the rendered figures (looked up by file stem). */
export const reportBlocks = (
  input: ReportInput,
  figures: ReadonlyMap<string, FigureSpec & { readonly svg: string }>,
): Block[] => {
  const figure = (name: string): Block => {
    const f = figures.get(name);
    if (f === undefined) throw new Error(`no figure ${name}`);
    return { kind: "figure", name, title: f.title, caption: f.caption, svg: f.svg };
  };
  const seeds = new Set(input.runs.map((r) => r.params.seed)).size;
  const estimator = input.rules.find((r) => r.seed === null)?.estimator ?? "saturated";
  return [
    { kind: "heading", level: 1, text: `Residual networks as perturbations of identity: ${input.datasetName}` },
    {
      kind: "paragraph",
      text:
        'A reproduction of M. Hauser, "On Residual Networks Learning a Perturbation from Identity" (2019): pre-activation ' +
        "ResNets with 3 sections of L residual blocks are trained for every depth L below; each block's perturbation " +
        "||x_{l+1} - x_l|| and scaled perturbation ||x_{l+1} - x_l|| / ||x_l|| are averaged over the test images. " +
        "d is a section's sum of mean perturbations (its computational distance), d_scaled the sum of mean scaled " +
        `perturbations. Values are ${seeds > 1 ? `means over ${seeds} seeds with +- one seed standard deviation` : "from one seed"}.`,
    },
    { kind: "heading", level: 2, text: "Configuration" },
    { kind: "table", table: configurationTable({ ...input, probeImages: input.sections.map((r) => r.images) }) },
    ...(input.paper === null ? [] : comparisonBlocks({ ...input, paper: input.paper })),
    { kind: "heading", level: 2, text: "Test error and training" },
    figure("fig1-test-error"),
    { kind: "table", table: testErrorTable(input.sectionsAcrossSeeds) },
    figure("training-curves"),
    { kind: "heading", level: 2, text: "Perturbation of each block" },
    figure("fig2-abs-per-depth"),
    figure("fig2-abs-overlay"),
    figure("fig5-scaled-per-depth"),
    figure("fig5-scaled-overlay"),
    { kind: "heading", level: 2, text: "Computational distance" },
    figure("fig3-distance"),
    figure("fig4-mean-perturbation"),
    figure("fig6-scaled-distance"),
    { kind: "heading", level: 2, text: "Power law of the mean scaled perturbation" },
    figure("fig7-mean-scaled-perturbation"),
    {
      kind: "paragraph",
      text:
        "Least-squares fit of log(d_scaled/L) on log L per section (whole network: d_scaled/(3L)), fitted to the means " +
        "over seeds. d_scaled, slope fixed at -1: the geometric mean of d_scaled over the fitted depths; saturated: the " +
        "mean of d_scaled over the deepest trained depths. d saturates from the smallest L from which d stays within " +
        "the saturation tolerance of d at the deepest L.",
    },
    { kind: "table", table: fitTable(input.fits) },
    { kind: "heading", level: 2, text: `Stopping rule (eps = ${input.eps})` },
    {
      kind: "paragraph",
      text:
        `Predicted L = ceil(d_scaled / eps) with d_scaled from the ${estimator} estimate (whole network: ceil(d_scaled / (3 eps))); ` +
        'empirical L = the smallest trained L whose mean scaled perturbation is below eps ("> L" when no trained depth ' +
        "reaches it). The paper's predicted L is computed the same way from its published d_scaled.",
    },
    { kind: "table", table: stopRuleTable(input.rules) },
  ];
};

/** Renders every figure and writes both documents. Same input rows, same bytes. */
export const buildReport = async (input: ReportInput): Promise<ReportFile[]> => {
  const specs = paperFigures({
    datasetName: input.datasetName,
    eps: input.eps,
    sectionsAcrossSeeds: input.sectionsAcrossSeeds,
    blocksAcrossSeeds: input.blocksAcrossSeeds,
    fits: input.fits,
    epochs: input.epochs,
    paperTestErrorBound: input.paper?.testErrorBelow ?? null,
  });
  const rendered = new Map<string, FigureSpec & { readonly svg: string }>();
  for (const spec of specs) rendered.set(spec.name, { ...spec, svg: await renderSvg(spec.spec) });
  const blocks = reportBlocks(input, rendered);
  const title = `Residual networks as perturbations of identity: ${input.datasetName}`;
  const documents: Record<(typeof REPORT_DOCUMENTS)[number], string> = {
    "report.md": toMarkdown(blocks),
    "report.html": toHtml(title, blocks),
  };
  return [
    ...REPORT_DOCUMENTS.map((name) => ({ name, contents: documents[name] })),
    ...[...rendered.values()].flatMap((f) => [
      { name: `${f.name}.svg`, contents: f.svg },
      { name: `${f.name}.png`, contents: svgToPng(f.svg) },
    ]),
  ];
};
