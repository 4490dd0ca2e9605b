/**
 * The paper's Figures 1-7 as Vega-Lite specs: pure functions from the aggregate and fit rows to a chart whose data
 * travels inline (`data.values`), so a spec alone renders the figure and tests can read what is plotted.
 *
 * Measured values are means over seeds (the `*AcrossSeeds` tables); with several seeds the points carry error bars
 * of +- one seed standard deviation. Sections are shown 1-based ("section 1" is the first, highest-resolution one);
 * the whole network is section -1 in the tables.
 */
import type { TopLevelSpec } from "vega-lite";
import type { BlockSeedSummaryRow, FitRow, SectionSeedSummaryRow } from "../analysis.ts";
import { NETWORK_SECTION, SECTION_COUNT } from "../analysis.ts";

/** One figure of the report: its file stem, a title and a caption for the documents, and its chart. */
export interface FigureSpec {
  /** File stem, e.g. `fig1-test-error` (written as .svg and .png). */
  readonly name: string;
  readonly title: string;
  readonly caption: string;
  readonly spec: TopLevelSpec;
}

/** Fonts of every chart: DejaVu Sans is what the PNG renderer loads; the rest are fallbacks for browsers. */
export const CHART_FONT = "DejaVu Sans, Verdana, Arial, sans-serif";

const CONFIG = {
  font: CHART_FONT,
  background: "white",
  padding: 10,
  title: { fontSize: 15, subtitleFontSize: 11, subtitleColor: "#555", anchor: "start", offset: 10 },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal", gridColor: "#e8e8e8" },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: "normal" },
  view: { stroke: "#ccc" },
} as const;

const PANEL = { width: 600, height: 300 } as const;
/** The three per-section panels of Figures 2 and 5, side by side. */
const SECTION_PANEL = { width: 340, height: 300 } as const;

/** "section 1".."section 3" for sections 0..2, "whole network" for -1. */
export const sectionLabel = (section: number): string =>
  section === NETWORK_SECTION ? "whole network" : `section ${section + 1}`;

const SECTION_ORDER = [0, 1, 2, NETWORK_SECTION];
const SECTION_COLORS = ["#4c78a8", "#f58518", "#54a24b", "#222222"];
const sectionColor = {
  field: "sectionLabel",
  type: "nominal",
  title: null,
  scale: { domain: SECTION_ORDER.map(sectionLabel), range: SECTION_COLORS },
  sort: SECTION_ORDER.map(sectionLabel),
} as const;

/** Sequential colours for depth L; viridis without its palest yellow, which vanishes on white. */
const depthColorScale = { scheme: { name: "viridis", extent: [0, 0.85] } } as const;

const depthAxisTitle = "blocks per section L";
/** The L axis of Figures 1, 3, 4, 6: the trained range with a little room at the ends, whole-number ticks. */
const depthAxis = {
  field: "L",
  type: "quantitative",
  title: depthAxisTitle,
  scale: { zero: false, nice: false, padding: 14 },
  axis: { tickMinStep: 1 },
} as const;

/** A value with its seed spread: low/high are value -+ std, null with one seed. */
interface WithSpread {
  readonly value: number;
  readonly std: number | null;
  readonly low: number | null;
  readonly high: number | null;
}

const spread = (value: number, std: number | null): WithSpread => ({
  value,
  std,
  low: std === null ? null : value - std,
  high: std === null ? null : value + std,
});

const byDepthThenSection = <T extends { readonly depth: number; readonly section: number }>(rows: readonly T[]): T[] =>
  [...rows].sort((a, b) => a.depth - b.depth || SECTION_ORDER.indexOf(a.section) - SECTION_ORDER.indexOf(b.section));

/** Error bars (rules from low to high) for the points that have a seed spread; none with a single seed. */
const errorBarLayers = (rows: ReadonlyArray<{ readonly low: number | null }>, x: object, y: object, y2: object, color: object | null) =>
  rows.some((r) => r.low !== null)
    ? [
        {
          name: "seed std",
          transform: [{ filter: "datum.low != null" }],
          mark: { type: "rule", strokeWidth: 1.2 },
          encoding: { x, y, y2, ...(color === null ? {} : { color }) },
        },
      ]
    : [];

// ---------------------------------------------------------------------------------------------------------------
// Figure 1: test error against L

export interface TestErrorPoint extends WithSpread {
  readonly L: number;
  readonly seeds: number;
}

/** Test error per trained depth (network rows; the test error is the same on every row of a run). */
export const testErrorPoints = (sections: readonly SectionSeedSummaryRow[]): TestErrorPoint[] =>
  byDepthThenSection(sections)
    .filter((r) => r.section === NETWORK_SECTION && r.testError !== null)
    .map((r) => ({ L: r.depth, seeds: r.seeds, ...spread(r.testError!, r.testErrorSeedStd) }));

export const testErrorFigure = (sections: readonly SectionSeedSummaryRow[], datasetName: string): TopLevelSpec => {
  const points = testErrorPoints(sections);
  const seeds = Math.max(0, ...points.map((p) => p.seeds));
  const y = { field: "value", type: "quantitative", title: "test error", axis: { format: ".1%" }, scale: { zero: true } };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: {
      text: `Figure 1: test error against depth (${datasetName})`,
      subtitle: seeds > 1 ? `mean over ${seeds} seeds, error bars +- one seed std` : "one seed",
    },
    ...PANEL,
    data: { values: points },
    layer: [
      {
        name: "measured",
        mark: { type: "line", point: { size: 50 }, color: "#4c78a8" },
        encoding: { x: depthAxis, y },
      },
      ...errorBarLayers(points, depthAxis, { field: "low", type: "quantitative" }, { field: "high" }, null),
    ],
  } as TopLevelSpec;
};

// ---------------------------------------------------------------------------------------------------------------
// Figures 3, 4, 6: a section measure against L

/** The per-section measures of Figures 3, 4, 6 and 7, with their axis titles. */
export const SECTION_MEASURES = {
  distance: { std: "distanceSeedStd", title: "computational distance d" },
  meanPerturbation: { std: "meanPerturbationSeedStd", title: "mean perturbation d/L" },
  scaledDistance: { std: "scaledDistanceSeedStd", title: "scaled distance d_scaled" },
  meanScaledPerturbation: { std: "meanScaledPerturbationSeedStd", title: "mean scaled perturbation d_scaled/L" },
} as const;
export type SectionMeasure = keyof typeof SECTION_MEASURES;

export interface SectionPoint extends WithSpread {
  readonly L: number;
  readonly section: number;
  readonly sectionLabel: string;
}

/** One point per (depth, section incl. the whole network) with a defined value, ordered by depth then section. */
export const sectionPoints = (sections: readonly SectionSeedSummaryRow[], measure: SectionMeasure): SectionPoint[] =>
  byDepthThenSection(sections).flatMap((r) => {
    const value = r[measure];
    if (value === null) return [];
    return [{ L: r.depth, section: r.section, sectionLabel: sectionLabel(r.section), ...spread(value, r[SECTION_MEASURES[measure].std]) }];
  });

export const sectionMeasureFigure = (
  sections: readonly SectionSeedSummaryRow[],
  measure: SectionMeasure,
  title: string,
  subtitle: string,
): TopLevelSpec => {
  const points = sectionPoints(sections, measure);
  const seeds = Math.max(0, ...sections.map((r) => r.seeds));
  const y = { field: "value", type: "quantitative", title: SECTION_MEASURES[measure].title };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: { text: title, subtitle: seeds > 1 ? `${subtitle}; mean over ${seeds} seeds, error bars +- one seed std` : subtitle },
    ...PANEL,
    data: { values: points },
    layer: [
      {
        name: "measured",
        mark: { type: "line", point: { size: 45 } },
        encoding: { x: depthAxis, y, color: sectionColor },
      },
      ...errorBarLayers(points, depthAxis, { field: "low", type: "quantitative" }, { field: "high" }, sectionColor),
    ],
  } as TopLevelSpec;
};

// ---------------------------------------------------------------------------------------------------------------
// Figure 7: d_scaled/L on log-log axes with eps and the fitted power law

export interface PowerLawPoint {
  readonly L: number;
  readonly section: number;
  readonly sectionLabel: string;
  /** exp(intercept) * L^slope of the section's fit over means. */
  readonly fitted: number;
  readonly slope: number;
  readonly intercept: number;
}

/**
 * The fitted power law y = exp(intercept) * L^slope of each section (fits over seed means, seed null), evaluated
 * at the trained depths from the fit's minDepth to maxDepth: on log-log axes the polyline through them is the
 * exact straight line of the power law over the trained range.
 */
export const powerLawPoints = (fits: readonly FitRow[], depths: readonly number[]): PowerLawPoint[] => {
  const sorted = [...new Set(depths)].sort((a, b) => a - b);
  return SECTION_ORDER.flatMap((section) => {
    const fit = fits.find((f) => f.seed === null && f.section === section);
    if (fit === undefined || fit.slope === null || fit.intercept === null) return [];
    const { slope, intercept } = fit;
    return sorted
      .filter((L) => L >= fit.minDepth && L <= fit.maxDepth)
      .map((L) => ({ L, section, sectionLabel: sectionLabel(section), fitted: Math.exp(intercept) * L ** slope, slope, intercept }));
  });
};

export const powerLawFigure = (sections: readonly SectionSeedSummaryRow[], fits: readonly FitRow[], eps: number): TopLevelSpec => {
  // Log axes: only positive values (the fit leaves out the others too); error bars only where low > 0.
  const points = sectionPoints(sections, "meanScaledPerturbation").filter((p) => p.value > 0);
  const bars = points.map((p) => (p.low !== null && p.low > 0 ? p : { ...p, low: null, high: null }));
  const fitted = powerLawPoints(fits, sections.map((r) => r.depth));
  const depths = points.map((p) => p.L);
  const seeds = Math.max(0, ...sections.map((r) => r.seeds));
  const x = { ...depthAxis, title: `${depthAxisTitle} (log scale)`, scale: { type: "log", nice: false, padding: 14 } };
  const y = { type: "quantitative", title: "mean scaled perturbation d_scaled/L (log scale)", scale: { type: "log", nice: false, padding: 16 } };
  const exponents = SECTION_ORDER.flatMap((s) => {
    const f = fitted.find((p) => p.section === s);
    return f === undefined ? [] : [`${sectionLabel(s)} ${f.slope.toFixed(2)}`];
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: {
      text: "Figure 7: mean scaled perturbation against depth, log-log",
      subtitle: [
        `points: measured${seeds > 1 ? ` (mean over ${seeds} seeds +- seed std)` : ""}; dashed: fitted power law exp(b) L^a; ` +
          `grey: eps = ${eps}; whole network: d_scaled/(3L)`,
        exponents.length === 0 ? "no power law fitted (fewer than 2 depths)" : `fitted exponents a (hypothesis -1): ${exponents.join(", ")}`,
      ],
    },
    ...PANEL,
    layer: [
      {
        name: "eps",
        data: { values: [{ eps, label: `eps = ${eps}`, L: depths.length === 0 ? 1 : Math.max(...depths) }] },
        layer: [
          { mark: { type: "rule", color: "#888", strokeDash: [2, 3], strokeWidth: 1.5 }, encoding: { y: { ...y, field: "eps" } } },
          {
            mark: { type: "text", color: "#555", align: "right", baseline: "bottom", dy: -3, fontSize: 11 },
            encoding: { x: { ...x, field: "L" }, y: { ...y, field: "eps" }, text: { field: "label" } },
          },
        ],
      },
      // No fit below two depths: leave the layer out rather than draw an empty one (vega warns on empty extents).
      ...(fitted.length === 0
        ? []
        : [
            {
              name: "fit",
              data: { values: fitted },
              mark: { type: "line", strokeDash: [6, 4], strokeWidth: 1.5 },
              encoding: { x, y: { ...y, field: "fitted" }, color: sectionColor, detail: { field: "sectionLabel" } },
            },
          ]),
      {
        name: "measured",
        data: { values: bars },
        layer: [
          { mark: { type: "point", filled: true, opacity: 1, size: 45 }, encoding: { x, y: { ...y, field: "value" }, color: sectionColor } },
          ...errorBarLayers(bars, x, { ...y, field: "low" }, { field: "high" }, sectionColor),
        ],
      },
    ],
  } as TopLevelSpec;
};

// ---------------------------------------------------------------------------------------------------------------
// Figures 2 and 5: perturbation per block against its position in the section

/** The per-block measures of Figures 2 and 5. */
export const BLOCK_MEASURES = {
  absMean: { title: "perturbation ||x_{l+1} - x_l||", short: "absolute perturbation" },
  scaledMean: { title: "scaled perturbation ||x_{l+1} - x_l|| / ||x_l||", short: "scaled perturbation" },
} as const;
export type BlockMeasure = keyof typeof BLOCK_MEASURES;

export interface BlockCurvePoint {
  readonly section: number;
  readonly sectionLabel: string;
  readonly L: number;
  /** Rank of L among the trained depths, 0 for the smallest. */
  readonly rank: number;
  /** block / (L - 1): 0 for the first block of the section, 1 for the last. */
  readonly position: number;
  readonly block: number;
  /** The measured value (mean over images, then over seeds). */
  readonly value: number;
  /** Vertical offset of the ridgeline: rank * the section's step (0 in the overlay). */
  readonly offset: number;
  /** value + offset: what the ridgeline plots. */
  readonly y: number;
}

/** Largest value of a measure per section: sets the ridgeline step so that curves overlap only a little. */
const sectionMaxima = (points: ReadonlyArray<{ readonly section: number; readonly value: number }>) => {
  const maxima = new Map<number, number>();
  for (const p of points) maxima.set(p.section, Math.max(maxima.get(p.section) ?? 0, p.value));
  return maxima;
};

/**
 * Each next-deeper curve of the ridgeline is raised by this multiple of the section's largest value: above 1, so
 * every curve stays in its own band above its own zero line and no curve crosses another's.
 */
export const RIDGELINE_STEP = 1.1;

/**
 * Per-block points of every (section, L) curve, ordered by section, L and block. With `ridgeline`, curve k (the
 * k-th smallest L) is raised by k * step, where step = RIDGELINE_STEP * the section's largest value; without, offsets
 * are 0. Blocks with no value (scaled perturbation undefined) are left out.
 */
export const blockCurvePoints = (blocks: readonly BlockSeedSummaryRow[], measure: BlockMeasure, ridgeline: boolean): BlockCurvePoint[] => {
  const depths = [...new Set(blocks.map((b) => b.depth))].sort((a, b) => a - b);
  const defined = blocks.flatMap((b) => {
    const value = b[measure];
    return value === null ? [] : [{ ...b, value }];
  });
  const maxima = sectionMaxima(defined);
  return defined
    .sort((a, b) => a.section - b.section || a.depth - b.depth || a.block - b.block)
    .map((b) => {
      const rank = depths.indexOf(b.depth);
      const offset = ridgeline ? rank * RIDGELINE_STEP * (maxima.get(b.section) ?? 0) : 0;
      return {
        section: b.section,
        sectionLabel: sectionLabel(b.section),
        L: b.depth,
        rank,
        position: b.position,
        block: b.block,
        value: b.value,
        offset,
        y: b.value + offset,
      };
    });
};

/** The ridgeline step of each section (value units), for the panel titles. */
export const ridgelineSteps = (points: readonly BlockCurvePoint[]): Map<number, number> =>
  new Map([...sectionMaxima(points)].map(([section, max]) => [section, RIDGELINE_STEP * max]));

const positionAxis = {
  field: "position",
  type: "quantitative",
  title: "position in section l/(L-1)",
  scale: { domain: [0, 1] as number[] },
} as const;
const depthColor = (legend: boolean) =>
  ({ field: "L", type: "quantitative", title: "L", scale: depthColorScale, legend: legend ? { type: "gradient" } : null }) as const;

const sections = (points: ReadonlyArray<{ readonly section: number }>) =>
  [...new Set(points.map((p) => p.section))].filter((s) => s >= 0 && s < SECTION_COUNT).sort((a, b) => a - b);

/** Ridgeline (the paper's 3-D waterfall in 2-D): one panel per section, curves raised by rank of L and labelled. */
export const blockRidgelineFigure = (blocks: readonly BlockSeedSummaryRow[], measure: BlockMeasure, figure: number): TopLevelSpec => {
  const points = blockCurvePoints(blocks, measure, true);
  const steps = ridgelineSteps(points);
  const depthCount = new Set(points.map((p) => p.L)).size;
  const height = Math.max(SECTION_PANEL.height, 22 * depthCount);
  const seeds = Math.max(0, ...blocks.map((b) => b.seeds));
  // Each curve's label sits left of its first block; its zero is a thin baseline.
  const firstBlocks = { filter: "datum.block === 0" };
  const panel = (section: number) => ({
    title: { text: sectionLabel(section), subtitle: `curve k (k = 0 for the smallest L) raised by k x ${formatStep(steps.get(section) ?? 0)}`, fontSize: 13 },
    width: SECTION_PANEL.width,
    height,
    transform: [{ filter: `datum.section === ${section}` }],
    layer: [
      {
        name: `baselines-section${section + 1}`,
        transform: [firstBlocks],
        mark: { type: "rule", color: "#bbb", strokeWidth: 0.8 },
        encoding: { x: { datum: 0, type: "quantitative" }, x2: { datum: 1 }, y: { field: "offset", type: "quantitative", axis: null } },
      },
      ...markerLayers(points, {
        name: `markers-section${section + 1}`,
        mark: { type: "point", filled: true, size: 18, opacity: 1 },
        encoding: { x: positionAxis, y: { field: "y", type: "quantitative", axis: null }, color: depthColor(false) },
      }),
      {
        name: `curves-section${section + 1}`,
        mark: { type: "line", strokeWidth: 1.6 },
        encoding: {
          x: positionAxis,
          y: { field: "y", type: "quantitative", axis: null, scale: { zero: true, nice: false, padding: 6 } },
          color: depthColor(false),
          detail: { field: "L" },
          order: { field: "position" },
        },
      },
      {
        name: `labels-section${section + 1}`,
        transform: [firstBlocks, { calculate: "'L=' + datum.L", as: "label" }],
        mark: { type: "text", align: "right", baseline: "middle", dx: -6, fontSize: 10 },
        encoding: { x: positionAxis, y: { field: "y", type: "quantitative", axis: null }, text: { field: "label" }, color: depthColor(false) },
      },
    ],
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: {
      text: `Figure ${figure}: ${BLOCK_MEASURES[measure].short} of each block, ridgeline by depth`,
      subtitle:
        `${BLOCK_MEASURES[measure].title}, mean over test images${seeds > 1 ? ` and ${seeds} seeds` : ""}; ` +
        "one curve per L, ordered by L from the bottom; grey line: the curve's zero",
    },
    data: { values: points },
    hconcat: sections(points).map(panel),
    spacing: 40,
  } as TopLevelSpec;
};

/** Overlay: all curves of a section on one axis, coloured by L on a sequential scale. */
export const blockOverlayFigure = (blocks: readonly BlockSeedSummaryRow[], measure: BlockMeasure, figure: number): TopLevelSpec => {
  const points = blockCurvePoints(blocks, measure, false);
  const seeds = Math.max(0, ...blocks.map((b) => b.seeds));
  const x = positionAxis;
  const y = { field: "value", type: "quantitative", title: BLOCK_MEASURES[measure].title } as const;
  const panel = (section: number) => ({
    title: { text: sectionLabel(section), fontSize: 13 },
    ...SECTION_PANEL,
    transform: [{ filter: `datum.section === ${section}` }],
    layer: [
      {
        mark: { type: "line", strokeWidth: 1.6 },
        encoding: { x, y, color: depthColor(true), detail: { field: "L" }, order: { field: "position" } },
      },
      // Hollow markers: stroke-only colour keeps the legend a gradient (vega draws symbols for fill + stroke).
      ...markerLayers(points, {
        mark: { type: "point", filled: false, fill: "white", size: 20, strokeWidth: 1.4, opacity: 1 },
        encoding: { x, y, color: depthColor(true) },
      }),
    ],
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: {
      text: `Figure ${figure}: ${BLOCK_MEASURES[measure].short} of each block, all depths`,
      subtitle: `mean over test images${seeds > 1 ? ` and ${seeds} seeds` : ""}; one curve per L, coloured by L`,
    },
    data: { values: points },
    hconcat: sections(points).map(panel),
    spacing: 30,
  } as TopLevelSpec;
};

const MAX_DEPTHS_WITH_MARKERS = 12;

/**
 * A marker layer on every block while there are few curves; with many, only on one-block curves (L = 1), which
 * have no line; none when that leaves no point (an empty layer makes vega warn about empty extents).
 */
const markerLayers = <Layer extends object>(points: ReadonlyArray<{ readonly L: number }>, layer: Layer) => {
  const all = new Set(points.map((p) => p.L)).size <= MAX_DEPTHS_WITH_MARKERS;
  if (!all && !points.some((p) => p.L === 1)) return [];
  return [{ ...layer, transform: [{ filter: all ? "true" : "datum.L === 1" }] }];
};

const formatStep = (step: number) => (step === 0 ? "0" : step.toPrecision(3));

// ---------------------------------------------------------------------------------------------------------------
// The full set

export interface FigureInputs {
  /** Display name of the data set, e.g. "MNIST". */
  readonly datasetName: string;
  readonly eps: number;
  readonly sectionsAcrossSeeds: readonly SectionSeedSummaryRow[];
  readonly blocksAcrossSeeds: readonly BlockSeedSummaryRow[];
  readonly fits: readonly FitRow[];
}

/** File stems of the figures, in the order `paperFigures` returns them (the report stage declares one .svg and one .png each). */
export const FIGURE_NAMES = [
  "fig1-test-error",
  "fig2-abs-ridgeline",
  "fig2-abs-overlay",
  "fig3-distance",
  "fig4-mean-perturbation",
  "fig5-scaled-ridgeline",
  "fig5-scaled-overlay",
  "fig6-scaled-distance",
  "fig7-mean-scaled-perturbation",
] as const;

/** Every figure of the report, in the paper's order. */
export const paperFigures = (input: FigureInputs): FigureSpec[] => {
  const s = input.sectionsAcrossSeeds;
  const b = input.blocksAcrossSeeds;
  const perSection = "per section and for the whole network";
  return [
    {
      name: "fig1-test-error",
      title: "Figure 1: test error",
      caption: "Test error of the trained network against the number of blocks per section L.",
      spec: testErrorFigure(s, input.datasetName),
    },
    {
      name: "fig2-abs-ridgeline",
      title: "Figure 2 (ridgeline): absolute perturbation per block",
      caption:
        "Mean over test images of ||x_{l+1} - x_l|| for every block against its relative position l/(L-1) in its section; " +
        "one curve per trained L, raised by its rank (the paper's waterfall plot).",
      spec: blockRidgelineFigure(b, "absMean", 2),
    },
    {
      name: "fig2-abs-overlay",
      title: "Figure 2 (overlay): absolute perturbation per block",
      caption: "The same curves on a common axis, coloured by L.",
      spec: blockOverlayFigure(b, "absMean", 2),
    },
    {
      name: "fig3-distance",
      title: "Figure 3: computational distance",
      caption: "Computational distance d (sum over a section's blocks of the mean absolute perturbation) against L; the whole network sums the three sections.",
      spec: sectionMeasureFigure(s, "distance", "Figure 3: computational distance d against depth", perSection),
    },
    {
      name: "fig4-mean-perturbation",
      title: "Figure 4: mean perturbation",
      caption: "Mean absolute perturbation d/L per block against L (whole network: d/(3L)).",
      spec: sectionMeasureFigure(s, "meanPerturbation", "Figure 4: mean perturbation d/L against depth", `${perSection} (d/(3L))`),
    },
    {
      name: "fig5-scaled-ridgeline",
      title: "Figure 5 (ridgeline): scaled perturbation per block",
      caption: "Mean over test images of ||x_{l+1} - x_l|| / ||x_l|| per block against its position in its section, one curve per L, raised by its rank.",
      spec: blockRidgelineFigure(b, "scaledMean", 5),
    },
    {
      name: "fig5-scaled-overlay",
      title: "Figure 5 (overlay): scaled perturbation per block",
      caption: "The same curves on a common axis, coloured by L.",
      spec: blockOverlayFigure(b, "scaledMean", 5),
    },
    {
      name: "fig6-scaled-distance",
      title: "Figure 6: scaled distance",
      caption: "Scaled computational distance d_scaled (sum over a section's blocks of the mean scaled perturbation) against L.",
      spec: sectionMeasureFigure(s, "scaledDistance", "Figure 6: scaled distance d_scaled against depth", perSection),
    },
    {
      name: "fig7-mean-scaled-perturbation",
      title: "Figure 7: mean scaled perturbation, log-log",
      caption:
        `Mean scaled perturbation d_scaled/L against L on log-log axes, the threshold eps = ${input.eps} and the power law ` +
        "exp(b) L^a fitted to the means over seeds (the paper's hypothesis: a = -1).",
      spec: powerLawFigure(s, input.fits, input.eps),
    },
  ];
};
