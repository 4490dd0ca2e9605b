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

/** Discrete colours for the trained depths L: viridis without its palest yellow, which vanishes on white. */
const depthColorScale = { scheme: { name: "viridis", extent: [0, 0.85] } } as const;

/**
 * The trained depths that get a labelled tick on a log axis `width` pixels wide: from the smallest up, each next one
 * at least `minGap` pixels right of the last kept (vega's own overlap removal does not act on explicit tick values).
 */
export const depthTicks = (depths: readonly number[], width: number = PANEL.width, minGap = 26): number[] => {
  const sorted = [...new Set(depths)].filter((d) => d > 0).sort((a, b) => a - b);
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  if (first === undefined || last === undefined || first === last) return sorted;
  const pixelsPerLog = width / Math.log(last / first);
  const kept: number[] = [];
  for (const d of sorted) {
    const previous = kept[kept.length - 1];
    if (previous === undefined || Math.log(d / previous) * pixelsPerLog >= minGap) kept.push(d);
  }
  return kept;
};

/**
 * The L axis of Figures 1, 3, 4, 6 and 7: log scale (the depths are spread on a log scale, and the power law of
 * Figure 7 is a line on it), ticks at trained depths, as many as fit without their labels colliding.
 */
const depthAxis = (depths: readonly number[]) =>
  ({
    field: "L",
    type: "quantitative",
    title: "blocks per section L (log scale)",
    scale: { type: "log", nice: false, padding: 14 },
    axis: { values: depthTicks(depths), format: "d", grid: true },
  }) as const;

/**
 * Tick values for a log axis over [low, high]: the 1-2-5 sequence of each decade (1-3 when the range spans more
 * than three decades, powers of ten above six), so labels are round numbers and never crowd.
 */
export const logTicks = (low: number, high: number): number[] => {
  if (!(low > 0 && high >= low)) return [];
  const first = Math.floor(Math.log10(low));
  const last = Math.ceil(Math.log10(high));
  const decades = last - first;
  const within = (mantissas: readonly number[]) => {
    const ticks: number[] = [];
    for (let e = first; e <= last; e++) {
      for (const m of mantissas) {
        const tick = Number((m * 10 ** e).toPrecision(12));
        if (tick >= low && tick <= high) ticks.push(tick);
      }
    }
    return ticks;
  };
  const ticks = within(decades > 6 ? [1] : decades > 3 ? [1, 3] : [1, 2, 5]);
  // A narrow range (less than a factor of 5) needs the finer 1-9 steps to show at least two ticks.
  return ticks.length >= 2 ? ticks : within([1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9]);
};

/**
 * A log y scale and axis over positive values whose domain ends on round ticks: from the 1-2-5 tick at or below the
 * smallest value to the one at or above the largest, so both ends are labelled.
 */
export const logScaleAxis = (values: readonly number[], format: string) => {
  const positive = values.filter((v) => v > 0);
  if (positive.length === 0) return { scale: { type: "log" }, axis: { format } } as const;
  const low = Math.min(...positive);
  const high = Math.max(...positive);
  const below = logTicks(low / 10, low).at(-1) ?? low;
  const above = logTicks(high, high * 10)[0] ?? high;
  return {
    scale: { type: "log", domain: [below, above], nice: false },
    axis: { values: logTicks(below, above), format, labelOverlap: "greedy" },
  } as const;
};

/** The smallest round number (1, 1.5, 2, 3, 4, 5, 6 or 8 times a power of ten) at or above x > 0. */
export const roundUp = (x: number): number => {
  if (!(x > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(x));
  const step = [1, 1.5, 2, 3, 4, 5, 6, 8, 10].find((m) => Number((m * power).toPrecision(12)) >= x) ?? 10;
  return Number((step * power).toPrecision(12));
};

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
const errorBarLayers = (
  rows: ReadonlyArray<{ readonly low: number | null }>,
  x: object,
  y: object,
  y2: object,
  color: object | null,
) =>
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

/**
 * Test error per L, with the paper's bound for MNIST (its Figure 1 stays well under it) as a dashed reference line
 * when one is given.
 */
export const testErrorFigure = (
  sections: readonly SectionSeedSummaryRow[],
  datasetName: string,
  paperBound: number | null = null,
): TopLevelSpec => {
  const points = testErrorPoints(sections);
  const seeds = Math.max(0, ...points.map((p) => p.seeds));
  const x = depthAxis(points.map((p) => p.L));
  const y = {
    field: "value",
    type: "quantitative",
    title: "test error",
    axis: { format: ".1%" },
    scale: { zero: true },
  };
  const bound = paperBound === null ? [] : [{ bound: paperBound, label: `paper: well under ${100 * paperBound}%` }];
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: {
      text: `Figure 1: test error against depth (${datasetName})`,
      subtitle: seeds > 1 ? `mean over ${seeds} seeds, error bars +- one seed std` : "one seed",
    },
    ...PANEL,
    layer: [
      ...bound.map(() => ({
        name: "paper",
        data: { values: bound },
        layer: [
          {
            mark: { type: "rule", color: "#888", strokeDash: [2, 3], strokeWidth: 1.5 },
            encoding: { y: { ...y, field: "bound" } },
          },
          {
            // At the right edge of the plot, just above the line.
            mark: { type: "text", x: "width", dx: -4, dy: -3, align: "right", baseline: "bottom", color: "#555" },
            encoding: { y: { ...y, field: "bound" }, text: { field: "label" } },
          },
        ],
      })),
      {
        name: "measured",
        data: { values: points },
        layer: [
          { mark: { type: "line", point: { size: 50 }, color: "#4c78a8" }, encoding: { x, y } },
          ...errorBarLayers(points, x, { field: "low", type: "quantitative" }, { field: "high" }, null),
        ],
      },
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
    return [
      {
        L: r.depth,
        section: r.section,
        sectionLabel: sectionLabel(r.section),
        ...spread(value, r[SECTION_MEASURES[measure].std]),
      },
    ];
  });

export const sectionMeasureFigure = (
  sections: readonly SectionSeedSummaryRow[],
  measure: SectionMeasure,
  title: string,
  subtitle: string,
): TopLevelSpec => {
  const points = sectionPoints(sections, measure);
  const seeds = Math.max(0, ...sections.map((r) => r.seeds));
  const x = depthAxis(points.map((p) => p.L));
  const y = { field: "value", type: "quantitative", title: SECTION_MEASURES[measure].title };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: {
      text: title,
      subtitle: seeds > 1 ? `${subtitle}; mean over ${seeds} seeds, error bars +- one seed std` : subtitle,
    },
    ...PANEL,
    data: { values: points },
    layer: [
      {
        name: "measured",
        mark: { type: "line", point: { size: 45 } },
        encoding: { x, y, color: sectionColor },
      },
      ...errorBarLayers(points, x, { field: "low", type: "quantitative" }, { field: "high" }, sectionColor),
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
      .map((L) => ({
        L,
        section,
        sectionLabel: sectionLabel(section),
        fitted: Math.exp(intercept) * L ** slope,
        slope,
        intercept,
      }));
  });
};

export const powerLawFigure = (
  sections: readonly SectionSeedSummaryRow[],
  fits: readonly FitRow[],
  eps: number,
): TopLevelSpec => {
  // Log axes: only positive values (the fit leaves out the others too); error bars only where low > 0.
  const points = sectionPoints(sections, "meanScaledPerturbation").filter((p) => p.value > 0);
  const bars = points.map((p) => (p.low !== null && p.low > 0 ? p : { ...p, low: null, high: null }));
  const fitted = powerLawPoints(
    fits,
    sections.map((r) => r.depth),
  );
  const depths = points.map((p) => p.L);
  const seeds = Math.max(0, ...sections.map((r) => r.seeds));
  const x = depthAxis(depths);
  const plotted = [eps, ...bars.flatMap((p) => [p.value, p.low ?? p.value, p.high ?? p.value])];
  plotted.push(...fitted.map((p) => p.fitted));
  const y = {
    type: "quantitative",
    title: "mean scaled perturbation d_scaled/L (log scale)",
    ...logScaleAxis(plotted, "~g"),
  };
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
        exponents.length === 0
          ? "no power law fitted (fewer than 2 depths)"
          : `fitted exponents a (hypothesis -1): ${exponents.join(", ")}`,
      ],
    },
    ...PANEL,
    layer: [
      {
        name: "eps",
        // Labelled at the shallowest depth, where the measured points lie far above eps.
        data: { values: [{ eps, label: `eps = ${eps}`, L: depths.length === 0 ? 1 : Math.min(...depths) }] },
        layer: [
          {
            mark: { type: "rule", color: "#888", strokeDash: [2, 3], strokeWidth: 1.5 },
            encoding: { y: { ...y, field: "eps" } },
          },
          {
            mark: { type: "text", color: "#555", align: "left", baseline: "bottom", dy: -3, fontSize: 11 },
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
          {
            mark: { type: "point", filled: true, opacity: 1, size: 45 },
            encoding: { x, y: { ...y, field: "value" }, color: sectionColor },
          },
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
  /** block / (L - 1): 0 for the first block of the section, 1 for the last. */
  readonly position: number;
  readonly block: number;
  /** The measured value (mean over images, then over seeds). */
  readonly value: number;
}

/** Per-block points of every (section, L) curve, ordered by section, L and block; blocks with no value left out. */
export const blockCurvePoints = (blocks: readonly BlockSeedSummaryRow[], measure: BlockMeasure): BlockCurvePoint[] =>
  blocks
    .flatMap((b) => {
      const value = b[measure];
      return value === null ? [] : [{ ...b, value }];
    })
    .sort((a, b) => a.section - b.section || a.depth - b.depth || a.block - b.block)
    .map((b) => ({
      section: b.section,
      sectionLabel: sectionLabel(b.section),
      L: b.depth,
      position: b.position,
      block: b.block,
      value: b.value,
    }));

/** What both block figures draw: the curve points, how many depths they span, and the most seeds behind a mean. */
const blockFigureData = (blocks: readonly BlockSeedSummaryRow[], measure: BlockMeasure) => {
  const points = blockCurvePoints(blocks, measure);
  return {
    points,
    depthCount: new Set(points.map((p) => p.L)).size,
    seeds: Math.max(0, ...blocks.map((b) => b.seeds)),
  };
};

const positionAxis = {
  field: "position",
  type: "quantitative",
  title: "position in section l/(L-1)",
  scale: { domain: [0, 1] as number[] },
  axis: { values: [0, 0.25, 0.5, 0.75, 1] as number[], format: ".2~f" },
} as const;

/** Discrete colour per trained L (ordinal: one colour each, a symbol legend), the same in every figure. */
const depthColor = (legend: boolean, depths: number) =>
  ({
    field: "L",
    type: "ordinal",
    title: "L",
    scale: depthColorScale,
    legend: legend
      ? { columns: depths > 16 ? 2 : 1, symbolLimit: depths, symbolType: "stroke", symbolStrokeWidth: 2.5 }
      : null,
  }) as const;

const sections = (points: ReadonlyArray<{ readonly section: number }>) =>
  [...new Set(points.map((p) => p.section))].filter((s) => s >= 0 && s < SECTION_COUNT).sort((a, b) => a - b);

/** Row height of the small multiples: roomy for a few depths, compact for the paper's 38. */
export const smallMultipleHeight = (depths: number): number =>
  depths <= 8 ? 64 : Math.max(30, Math.round(480 / depths));

/**
 * The paper's 3-D waterfall as small multiples: one row per trained L (smallest on top), one column per section.
 * Within a section every row shares one y axis starting at 0, so heights compare across L and each row's own axis
 * gives the values.
 */
export const blockSmallMultiplesFigure = (
  blocks: readonly BlockSeedSummaryRow[],
  measure: BlockMeasure,
  figure: number,
): TopLevelSpec => {
  const { points, depthCount, seeds } = blockFigureData(blocks, measure);
  const height = smallMultipleHeight(depthCount);
  /** A section's rows share the y domain [0, a round number above its largest value], labelled at 0, half and top. */
  const y = (section: number) => {
    const top = roundUp(Math.max(0, ...points.filter((p) => p.section === section).map((p) => p.value)));
    return {
      field: "value",
      type: "quantitative",
      title: null,
      scale: { domain: [0, top], nice: false },
      axis: { values: height >= 60 ? [0, top / 2, top] : [0, top], format: ".3~g", labelFlush: true, grid: true },
    };
  };
  const panel = (section: number) => ({
    name: `section${section + 1}`,
    title: { text: sectionLabel(section), fontSize: 13 },
    transform: [{ filter: `datum.section === ${section}` }],
    facet: {
      row: {
        field: "L",
        type: "ordinal",
        sort: "ascending",
        title: null,
        header: { labelExpr: "'L = ' + datum.value", labelAngle: 0, labelAlign: "left", labelFontSize: 11 },
      },
    } as const,
    spacing: 10,
    // Lay rows out by their plot areas, not by their axis labels, so the rows of the three sections line up.
    bounds: "flush",
    spec: {
      width: SECTION_PANEL.width,
      height,
      layer: [
        {
          mark: { type: "line", strokeWidth: 1.6 },
          encoding: {
            x: positionAxis,
            y: y(section),
            color: depthColor(false, depthCount),
            order: { field: "position" },
          },
        },
        ...markerLayers(points, {
          mark: { type: "point", filled: true, size: 16, opacity: 1 },
          encoding: { x: positionAxis, y: y(section), color: depthColor(false, depthCount) },
        }),
      ],
    },
    resolve: { scale: { y: "shared" } },
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: {
      text: `Figure ${figure}: ${BLOCK_MEASURES[measure].short} of each block, one row per depth`,
      subtitle:
        `${BLOCK_MEASURES[measure].title}, mean over test images${seeds > 1 ? ` and ${seeds} seeds` : ""}, ` +
        "against the block's position l/(L-1) in its section; the rows of a section share their y axis",
    },
    data: { values: points },
    hconcat: sections(points).map(panel),
    spacing: 36,
  } as TopLevelSpec;
};

/** Overlay: all curves of a section on one axis, one discrete colour per L. */
export const blockOverlayFigure = (
  blocks: readonly BlockSeedSummaryRow[],
  measure: BlockMeasure,
  figure: number,
): TopLevelSpec => {
  const { points, depthCount, seeds } = blockFigureData(blocks, measure);
  const x = positionAxis;
  const y = { field: "value", type: "quantitative", title: BLOCK_MEASURES[measure].title } as const;
  const panel = (section: number) => ({
    title: { text: sectionLabel(section), fontSize: 13 },
    ...SECTION_PANEL,
    transform: [{ filter: `datum.section === ${section}` }],
    layer: [
      {
        mark: { type: "line", strokeWidth: 1.6 },
        encoding: { x, y, color: depthColor(true, depthCount), detail: { field: "L" }, order: { field: "position" } },
      },
      ...markerLayers(points, {
        mark: { type: "point", filled: false, fill: "white", size: 20, strokeWidth: 1.4, opacity: 1 },
        encoding: { x, y, color: depthColor(true, depthCount) },
      }),
    ],
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: {
      text: `Figure ${figure}: ${BLOCK_MEASURES[measure].short} of each block, all depths`,
      subtitle: `mean over test images${seeds > 1 ? ` and ${seeds} seeds` : ""}; one curve per L`,
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

// ---------------------------------------------------------------------------------------------------------------
// Training curves: train loss and test error per epoch, one line per L

/** One epoch of one train node: its `epochs` row with the node's L and seed. */
export interface TrainingEpochRow {
  readonly L: number;
  readonly seed: number;
  readonly epoch: number;
  readonly trainLoss: number;
  readonly trainError: number;
  readonly testError: number;
  readonly learningRate: number;
}

/** The training curves: train loss (left) and test error (right) against the epoch, log y, one colour per L. */
export const trainingCurvesFigure = (epochs: readonly TrainingEpochRow[], datasetName: string): TopLevelSpec => {
  // Copies of the plotted fields only: vega tags the objects it is given, which must not be the caller's rows.
  const rows = epochs
    .map(({ L, seed, epoch, trainLoss, testError }) => ({ L, seed, epoch, trainLoss, testError }))
    .sort((a, b) => a.L - b.L || a.seed - b.seed || a.epoch - b.epoch);
  const depthCount = new Set(rows.map((r) => r.L)).size;
  const seeds = new Set(rows.map((r) => r.seed)).size;
  const x = {
    field: "epoch",
    type: "quantitative",
    title: "epoch",
    scale: { nice: false, padding: 12 },
    axis: { values: [...new Set(rows.map((r) => r.epoch))].sort((a, b) => a - b), format: "d", labelOverlap: "greedy" },
  };
  const panel = (field: "trainLoss" | "testError", title: string, format: string) => {
    const values = rows.map((r) => r[field]);
    return {
      name: field,
      title: { text: title, fontSize: 13 },
      width: 400,
      height: 280,
      transform: [{ filter: `datum.${field} > 0` }],
      mark: { type: "line", strokeWidth: 1.8, point: { size: 36, filled: true } },
      encoding: {
        x,
        y: { field, type: "quantitative", title: `${title} (log scale)`, ...logScaleAxis(values, format) },
        // Both panels declare the legend: vega-lite merges the two into one (a legend on one only conflicts).
        color: depthColor(true, depthCount),
        detail: { field: "seed" },
        order: { field: "epoch" },
      },
    };
  };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CONFIG,
    title: {
      text: `Training curves per depth (${datasetName})`,
      subtitle:
        "train loss: mean over the epoch's batches; test error: after the epoch" +
        (seeds > 1 ? `; one line per seed (${seeds})` : ""),
    },
    data: { values: rows },
    hconcat: [panel("trainLoss", "train loss", "~g"), panel("testError", "test error", ".2~%")],
    spacing: 40,
  } as TopLevelSpec;
};

// ---------------------------------------------------------------------------------------------------------------
// The full set

export interface FigureInputs {
  /** Display name of the data set, e.g. "MNIST". */
  readonly datasetName: string;
  readonly eps: number;
  readonly sectionsAcrossSeeds: readonly SectionSeedSummaryRow[];
  readonly blocksAcrossSeeds: readonly BlockSeedSummaryRow[];
  readonly fits: readonly FitRow[];
  readonly epochs: readonly TrainingEpochRow[];
  /** The paper's test-error bound drawn in Figure 1 (MNIST: 1%), or null for none. */
  readonly paperTestErrorBound: number | null;
}

/**
 * File stems of the figures, in the order `paperFigures` returns them (the report stage declares one .svg and one .png
 * each).
 */
export const FIGURE_NAMES = [
  "fig1-test-error",
  "fig2-abs-per-depth",
  "fig2-abs-overlay",
  "fig3-distance",
  "fig4-mean-perturbation",
  "fig5-scaled-per-depth",
  "fig5-scaled-overlay",
  "fig6-scaled-distance",
  "fig7-mean-scaled-perturbation",
  "training-curves",
] as const;

/** Every figure of the report, in the paper's order, then the training curves. */
export const paperFigures = (input: FigureInputs): FigureSpec[] => {
  const s = input.sectionsAcrossSeeds;
  const b = input.blocksAcrossSeeds;
  const perSection = "per section and for the whole network";
  return [
    {
      name: "fig1-test-error",
      title: "Figure 1: test error",
      caption:
        "Test error of the trained network against the number of blocks per section L" +
        (input.paperTestErrorBound === null
          ? "."
          : `; dashed: ${100 * input.paperTestErrorBound}%, which the paper's MNIST errors stay well under.`),
      spec: testErrorFigure(s, input.datasetName, input.paperTestErrorBound),
    },
    {
      name: "fig2-abs-per-depth",
      title: "Figure 2 (one row per depth): absolute perturbation per block",
      caption:
        "Mean over test images of ||x_{l+1} - x_l|| for every block against its relative position l/(L-1) in its section; " +
        "one row per trained L (the paper's waterfall plot as small multiples), a shared y axis per section.",
      spec: blockSmallMultiplesFigure(b, "absMean", 2),
    },
    {
      name: "fig2-abs-overlay",
      title: "Figure 2 (overlay): absolute perturbation per block",
      caption: "The same curves on a common axis, one colour per L.",
      spec: blockOverlayFigure(b, "absMean", 2),
    },
    {
      name: "fig3-distance",
      title: "Figure 3: computational distance",
      caption:
        "Computational distance d (sum over a section's blocks of the mean absolute perturbation) against L; the whole network sums the three sections.",
      spec: sectionMeasureFigure(s, "distance", "Figure 3: computational distance d against depth", perSection),
    },
    {
      name: "fig4-mean-perturbation",
      title: "Figure 4: mean perturbation",
      caption: "Mean absolute perturbation d/L per block against L (whole network: d/(3L)).",
      spec: sectionMeasureFigure(
        s,
        "meanPerturbation",
        "Figure 4: mean perturbation d/L against depth",
        `${perSection} (d/(3L))`,
      ),
    },
    {
      name: "fig5-scaled-per-depth",
      title: "Figure 5 (one row per depth): scaled perturbation per block",
      caption:
        "Mean over test images of ||x_{l+1} - x_l|| / ||x_l|| per block against its position in its section, " +
        "one row per L, a shared y axis per section.",
      spec: blockSmallMultiplesFigure(b, "scaledMean", 5),
    },
    {
      name: "fig5-scaled-overlay",
      title: "Figure 5 (overlay): scaled perturbation per block",
      caption: "The same curves on a common axis, one colour per L.",
      spec: blockOverlayFigure(b, "scaledMean", 5),
    },
    {
      name: "fig6-scaled-distance",
      title: "Figure 6: scaled distance",
      caption:
        "Scaled computational distance d_scaled (sum over a section's blocks of the mean scaled perturbation) against L.",
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
    {
      name: "training-curves",
      title: "Training curves",
      caption:
        "Train loss and test error after every epoch, one line per trained L: how far each network has converged.",
      spec: trainingCurvesFigure(input.epochs, input.datasetName),
    },
  ];
};
