/**
 * The report as a document: a list of blocks (headings, paragraphs, tables, figures) written out once as GitHub
 * markdown (figures by relative PNG file name) and once as one self-contained HTML page (figures as inline SVG).
 * Also the report's tables, built from the fit, stop-rule and aggregate rows and the training configuration, with
 * fixed number formatting so the same rows always give the same bytes.
 */
import {
  meanAndSampleStd,
  NETWORK_SECTION,
  type FitRow,
  type SectionSeedSummaryRow,
  type StopRuleRow,
} from "../analysis.ts";
import { sectionLabel } from "./figures.ts";
import { prefixSvgIds } from "./render.ts";

// ---------------------------------------------------------------------------------------------------------------
// Number formatting

/** A placeholder for a value that does not exist (a fit with too few depths, the paper's network row). */
export const MISSING = "–";

/** `digits` significant digits; exponent notation outside [1e-3, 1e5); MISSING for null or non-finite values. */
export const formatNumber = (x: number | null | undefined, digits = 4): string => {
  if (x === null || x === undefined || !Number.isFinite(x)) return MISSING;
  if (x === 0) return "0";
  const magnitude = Math.abs(x);
  return magnitude >= 1e-3 && magnitude < 1e5 ? x.toPrecision(digits) : x.toExponential(digits - 1);
};

/** An integer with thousands separators, e.g. 60000 -> "60,000" (fixed, not locale-dependent). */
export const formatCount = (n: number): string => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");

/** A fraction as a percentage with two decimals, e.g. 0.01234 -> "1.23%". */
export const formatPercent = (x: number | null | undefined): string =>
  x === null || x === undefined || !Number.isFinite(x) ? MISSING : `${(100 * x).toFixed(2)}%`;

/** Our empirical depth as the stop-rule tables print it: the depth, or "> L_max" when eps was not reached. */
export const formatEmpiricalDepth = (ours: number | null, maxTrained: number): string =>
  ours === null ? `> ${maxTrained}` : String(ours);

/** "mean ± std" when a seed std exists, else just the value. */
export const withSpread = (value: string, std: string | null): string => (std === null ? value : `${value} ± ${std}`);

/**
 * A mean with its seed std: the mean to 4 significant digits, the std to 2, except that a std below the mean's
 * last printed digit reads as zeros at that precision ("-0.7034 ± 0.0000", not float noise like 1.6e-16).
 */
export const formatMeanStd = (mean: number | null, std: number | null): string => {
  const value = formatNumber(mean);
  if (std === null || mean === null) return value;
  const decimals = /^-?\d+\.(\d+)$/.exec(value)?.[1]?.length ?? 0;
  return withSpread(value, Math.abs(std) < 0.5 * 10 ** -decimals ? std.toFixed(decimals) : formatNumber(std, 2));
};

/** Sample std over seeds of the non-null values, or null below two values. */
export const seedStd = (values: ReadonlyArray<number | null>): number | null => {
  const defined = values.filter((v): v is number => v !== null);
  return defined.length < 2 ? null : meanAndSampleStd(defined).std;
};

// ---------------------------------------------------------------------------------------------------------------
// Document model

export interface Table {
  readonly header: readonly string[];
  readonly rows: ReadonlyArray<readonly string[]>;
  /** Per column; default left. */
  readonly align?: ReadonlyArray<"left" | "right">;
}

export type Block =
  | { readonly kind: "heading"; readonly level: 1 | 2 | 3; readonly text: string }
  | { readonly kind: "paragraph"; readonly text: string }
  | { readonly kind: "table"; readonly table: Table }
  | { readonly kind: "list"; readonly items: readonly string[] }
  | {
      readonly kind: "figure";
      /** File stem: the markdown shows `${name}.png`, the HTML inlines `svg`. */
      readonly name: string;
      readonly title: string;
      readonly caption: string;
      readonly svg: string;
    };

const markdownCell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");

const markdownTable = ({ header, rows, align }: Table): string => {
  const rule = header.map((_, i) => (align?.[i] === "right" ? "---:" : "---"));
  return [header, rule, ...rows].map((cells) => `| ${cells.map(markdownCell).join(" | ")} |`).join("\n");
};

/** GitHub markdown; figures are `![title](name.png)` so a folder holding the report and its PNGs renders. */
export const toMarkdown = (blocks: readonly Block[]): string =>
  `${blocks
    .map((b) => {
      switch (b.kind) {
        case "heading":
          return `${"#".repeat(b.level)} ${b.text}`;
        case "paragraph":
          return b.text;
        case "table":
          return markdownTable(b.table);
        case "list":
          return b.items.map((item) => `- ${item}`).join("\n");
        case "figure":
          return `![${b.title}](${b.name}.png)\n\n*${b.caption}*`;
      }
    })
    .join("\n\n")}\n`;

export const escapeHtml = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const htmlTable = ({ header, rows, align }: Table): string => {
  const cell = (tag: string, text: string, i: number) =>
    `<${tag}${align?.[i] === "right" ? ' class="num"' : ""}>${escapeHtml(text)}</${tag}>`;
  return [
    "<table>",
    `<thead><tr>${header.map((h, i) => cell("th", h, i)).join("")}</tr></thead>`,
    "<tbody>",
    ...rows.map((r) => `<tr>${r.map((c, i) => cell("td", c, i)).join("")}</tr>`),
    "</tbody>",
    "</table>",
  ].join("\n");
};

/** The SVG document without its XML prolog, ids made unique to the figure, scaled to the page width. */
const inlineSvg = (svg: string, name: string): string =>
  prefixSvgIds(svg.replace(/^<\?xml[^>]*>\s*/, ""), name).replace(
    /^<svg /,
    '<svg style="max-width: 100%; height: auto" ',
  );

const STYLE = `
body { font-family: "DejaVu Sans", Verdana, Arial, sans-serif; max-width: 1320px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #ddd; } h3 { font-size: 1.1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5em 0; } figcaption { font-size: 0.92em; color: #444; margin-top: 0.4em; }
`.trim();

/** One self-contained HTML page: no external files, styles or scripts; SVGs inline. */
export const toHtml = (title: string, blocks: readonly Block[]): string => {
  const body = blocks.map((b) => {
    switch (b.kind) {
      case "heading":
        return `<h${b.level}>${escapeHtml(b.text)}</h${b.level}>`;
      case "paragraph":
        return `<p>${escapeHtml(b.text)}</p>`;
      case "table":
        return htmlTable(b.table);
      case "list":
        return `<ul>\n${b.items.map((item) => `<li>${escapeHtml(item)}</li>`).join("\n")}\n</ul>`;
      case "figure":
        return `<figure id="${b.name}">\n${inlineSvg(b.svg, b.name)}\n<figcaption>${escapeHtml(b.caption)}</figcaption>\n</figure>`;
    }
  });
  return [
    "<!DOCTYPE html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>\n${STYLE}\n</style>`,
    "</head>",
    "<body>",
    ...body,
    "</body>",
    "</html>",
    "",
  ].join("\n");
};

// ---------------------------------------------------------------------------------------------------------------
// Tables

const SECTION_ORDER = [0, 1, 2, NETWORK_SECTION];
const bySectionOrder = <T extends { readonly section: number }>(rows: readonly T[]): T[] =>
  [...rows].sort((a, b) => SECTION_ORDER.indexOf(a.section) - SECTION_ORDER.indexOf(b.section));

/** Per-seed rows of one section (seed not null), for seed spreads of the across-seed values. */
const perSeed = <T extends { readonly seed: number | null; readonly section: number }>(
  rows: readonly T[],
  section: number,
): T[] => rows.filter((r) => r.seed !== null && r.section === section);

/** The paper's published d_scaled has two decimals: print it as published. */
const formatPaperScaledDistance = (x: number | null) => (x === null ? MISSING : x.toFixed(2));

/**
 * The stop rule per section, ours (means over seeds; d_scaled with its seed std when there are several seeds)
 * beside the paper's. An empirical depth that no trained depth reached reads "> the deepest trained L".
 */
export const stopRuleTable = (rules: readonly StopRuleRow[]): Table => ({
  header: [
    "section",
    "d_scaled (ours)",
    "predicted L (ours)",
    "empirical L (ours)",
    "d_scaled (paper)",
    "predicted L (paper, computed)",
    "empirical L (paper)",
  ],
  align: ["left", "right", "right", "right", "right", "right", "right"],
  rows: bySectionOrder(rules.filter((r) => r.seed === null)).map((r) => {
    return [
      sectionLabel(r.section),
      formatMeanStd(r.scaledDistance, seedStd(perSeed(rules, r.section).map((s) => s.scaledDistance))),
      r.predictedDepth === null ? MISSING : String(r.predictedDepth),
      formatEmpiricalDepth(r.empiricalDepth, r.maxTrainedDepth),
      formatPaperScaledDistance(r.paperScaledDistance),
      r.paperPredictedDepth === null ? MISSING : String(r.paperPredictedDepth),
      r.paperEmpiricalDepth === null ? MISSING : String(r.paperEmpiricalDepth),
    ];
  }),
});

/** The power-law fit per section: exponent with its confidence interval, R^2, both d_scaled estimates, saturation. */
export const fitTable = (fits: readonly FitRow[]): Table => {
  const means = bySectionOrder(fits.filter((f) => f.seed === null));
  const confidence = means[0]?.confidence ?? 0.95;
  const saturatedDepths = new Set(means.map((f) => f.saturatedDepths));
  const sameSaturatedDepths = saturatedDepths.size === 1;
  return {
    header: [
      "section",
      "depths fitted",
      "exponent a (hypothesis -1)",
      `${Math.round(confidence * 100)}% CI of a`,
      "R^2",
      "d_scaled, slope fixed at -1",
      sameSaturatedDepths
        ? `d_scaled, saturated (mean of deepest ${[...saturatedDepths][0]} L)`
        : "d_scaled, saturated",
      "d saturates from L",
    ],
    align: ["left", "right", "right", "right", "right", "right", "right", "right"],
    rows: means.map((f) => {
      const seeds = perSeed(fits, f.section);
      const withSeedStd = (
        mean: number | null,
        key: "slope" | "scaledDistanceFixedSlope" | "scaledDistanceSaturated",
      ) => formatMeanStd(mean, seedStd(seeds.map((s) => s[key])));
      return [
        sectionLabel(f.section),
        `${f.depths} (L = ${f.minDepth}..${f.maxDepth})`,
        withSeedStd(f.slope, "slope"),
        f.slopeCiLow === null || f.slopeCiHigh === null
          ? MISSING
          : `[${formatNumber(f.slopeCiLow)}, ${formatNumber(f.slopeCiHigh)}]`,
        formatNumber(f.rSquared),
        withSeedStd(f.scaledDistanceFixedSlope, "scaledDistanceFixedSlope"),
        withSeedStd(f.scaledDistanceSaturated, "scaledDistanceSaturated") +
          (sameSaturatedDepths ? "" : ` (deepest ${f.saturatedDepths} L)`),
        f.distanceSaturationDepth === null ? `not by L = ${f.maxDepth}` : String(f.distanceSaturationDepth),
      ];
    }),
  };
};

/** Test error per trained depth (means over seeds with the seed std when there are several). */
export const testErrorTable = (sectionsAcrossSeeds: readonly SectionSeedSummaryRow[]): Table => {
  const network = sectionsAcrossSeeds.filter((r) => r.section === NETWORK_SECTION).sort((a, b) => a.depth - b.depth);
  return {
    header: ["L", "residual blocks 3L", "seeds", "test error"],
    align: ["right", "right", "right", "right"],
    rows: network.map((r) => [
      String(r.depth),
      String(r.blocks),
      String(r.seeds),
      withSpread(formatPercent(r.testError), r.testErrorSeedStd === null ? null : formatPercent(r.testErrorSeedStd)),
    ]),
  };
};

// ---------------------------------------------------------------------------------------------------------------
// The training configuration

/** What a train node was run with: its parameters and the run-time facts its manifest recorded. */
export interface TrainRun {
  readonly params: {
    readonly L: number;
    readonly seed: number;
    readonly epochs: number;
    readonly trainSubset: number;
    readonly batchSize: number;
    readonly augment: boolean;
    readonly learningRate: number;
    readonly momentum: number;
    readonly weightDecay: number;
    readonly schedule: string;
  };
  readonly runtime: Readonly<Record<string, unknown>>;
}

export interface ConfigurationFacts {
  /** e.g. "MNIST". */
  readonly datasetName: string;
  /** Images in the full training split. */
  readonly trainSplitSize: number;
  /** Test images each probe averaged over (from the aggregate rows). */
  readonly probeImages: readonly number[];
  readonly eps: number;
  readonly fits: readonly FitRow[];
  readonly runs: readonly TrainRun[];
}

/** "1, 2, 4" or, for a run of 3+ consecutive trained depths, "2..60". */
export const formatDepths = (depths: readonly number[], trained: readonly number[]): string => {
  const sorted = [...new Set(depths)].sort((a, b) => a - b);
  const all = [...new Set(trained)].sort((a, b) => a - b);
  const first = all.indexOf(sorted[0]!);
  const contiguous = sorted.length >= 3 && first >= 0 && sorted.every((d, i) => all[first + i] === d);
  return contiguous ? `${sorted[0]}..${sorted[sorted.length - 1]}` : sorted.join(", ");
};

/**
 * One value when every run agrees, else each value with the depths it applies to ("128 (L = 2..60); 64 (L = 70..100)").
 */
export const describeAcrossRuns = (runs: readonly TrainRun[], describe: (run: TrainRun) => string): string => {
  const depthsByValue = new Map<string, number[]>();
  for (const run of runs) {
    const value = describe(run);
    depthsByValue.set(value, [...(depthsByValue.get(value) ?? []), run.params.L]);
  }
  if (depthsByValue.size <= 1) return [...depthsByValue.keys()][0] ?? MISSING;
  const trained = runs.map((r) => r.params.L);
  return [...depthsByValue]
    .sort((a, b) => Math.min(...a[1]) - Math.min(...b[1]))
    .map(([value, depths]) => `${value} (L = ${formatDepths(depths, trained)})`)
    .join("; ");
};

const SCHEDULES: Readonly<Record<string, string>> = {
  cosine: "cosine annealing to 0, updated every step",
  step: "divided by 10 at 50% and again at 75% of the epochs",
};

/** The backend a train node ran on, from its manifest's runtime record. */
export const describeBackendRuntime = (runtime: Readonly<Record<string, unknown>>): string => {
  const b = runtime.backend as
    | {
        name?: string;
        tensorflow?: string;
        tfjs?: string;
        threads?: { intraOp?: number; interOp?: number };
        deterministic?: boolean;
      }
    | undefined;
  if (b === undefined || b.name === undefined) return "not recorded";
  const library = b.name === "cpu" ? `tfjs ${b.tfjs ?? "?"}, pure JS` : `TensorFlow ${b.tensorflow ?? "?"}`;
  const threads =
    b.threads === undefined
      ? ""
      : `, ${b.threads.intraOp ?? "?"} intra-op / ${b.threads.interOp ?? "?"} inter-op threads`;
  return `${b.name} (${library}${threads}${b.deterministic === true ? ", deterministic ops" : ""})`;
};

/** Everything needed to rerun the experiment, one setting per row. */
export const configurationTable = (facts: ConfigurationFacts): Table => {
  const { runs } = facts;
  const across = (describe: (run: TrainRun) => string) => describeAcrossRuns(runs, describe);
  const depths = [...new Set(runs.map((r) => r.params.L))].sort((a, b) => a - b);
  const seeds = [...new Set(runs.map((r) => r.params.seed))].sort((a, b) => a - b);
  const fit = facts.fits.find((f) => f.seed === null);
  const rows: Array<[string, string]> = [
    ["data set", facts.datasetName],
    [
      "training images",
      across((r) =>
        r.params.trainSubset === 0 || r.params.trainSubset >= facts.trainSplitSize
          ? `all ${formatCount(facts.trainSplitSize)}`
          : `first ${formatCount(r.params.trainSubset)} of ${formatCount(facts.trainSplitSize)}`,
      ),
    ],
    ["epochs", across((r) => String(r.params.epochs))],
    ["batch size", across((r) => String(r.params.batchSize))],
    ["learning rate", across((r) => String(r.params.learningRate))],
    ["momentum", across((r) => String(r.params.momentum))],
    ["weight decay", across((r) => String(r.params.weightDecay))],
    ["schedule", across((r) => SCHEDULES[r.params.schedule] ?? r.params.schedule)],
    ["augmentation", across((r) => (r.params.augment ? "4-pixel padding, random crop, horizontal flip" : "none"))],
    ["seeds", seeds.join(", ")],
    ["depths L (blocks per section; 3 sections)", depths.join(", ")],
    [
      "probe images (test set)",
      facts.probeImages.length === 0 ? MISSING : [...new Set(facts.probeImages)].map(formatCount).join(", "),
    ],
    ["stop-rule threshold eps", String(facts.eps)],
    ["saturation tolerance of d", fit === undefined ? MISSING : String(fit.saturationTolerance)],
    ["backend", across((r) => describeBackendRuntime(r.runtime))],
  ];
  return { header: ["setting", "value"], rows };
};
