/**
 * The README's generated headline block: a report's Figure 7, its stop-rule table, the comparison sentences, test
 * error and training time per L, and the command that reproduces it, written between two markers
 * (`<!-- report:NAME:start -->` ... `<!-- report:NAME:end -->`) from the tables a report node writes beside
 * report.md. scripts/readme-report.ts reads those tables and calls this; nothing in the block is typed by hand.
 */
import type { FitRow, SectionSeedSummaryRow, StopRuleRow } from "../analysis.ts";
import { formatPercent, stopRuleTable, toMarkdown, type Block } from "./document.ts";
import { exponentSentence, listWords, summarySentences } from "./findings.ts";
import type { PaperMnistReference } from "./paper.ts";

/** One epoch's wall time of one train node (the report's `trainingTimes` table). */
export interface TrainingTimeRow {
  readonly L: number;
  readonly seed: number;
  readonly epoch: number;
  readonly seconds: number;
}

export interface ReadmeBlockInput {
  /** The block's name in its markers, e.g. the preset "mnist-cpu". */
  readonly name: string;
  /** The data set's display name, e.g. "MNIST". */
  readonly datasetName: string;
  /** The report's folder relative to the README (links to its figures and report.md). */
  readonly reportDir: string;
  /** The command that reproduces the report. */
  readonly command: string;
  /** Depths the configuration asks for; fewer trained ones mark the block as partial. */
  readonly configuredDepths: readonly number[];
  readonly eps: number;
  readonly sectionsAcrossSeeds: readonly SectionSeedSummaryRow[];
  readonly fits: readonly FitRow[];
  readonly rules: readonly StopRuleRow[];
  readonly trainingTimes: readonly TrainingTimeRow[];
  readonly paper: PaperMnistReference | null;
}

export const blockMarkers = (name: string) =>
  ({ start: `<!-- report:${name}:start -->`, end: `<!-- report:${name}:end -->` }) as const;

/** Seconds as "2 h 31 min", "12 min 5 s" or "40 s". */
export const formatDuration = (seconds: number): string => {
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${s} s`;
};

/** Sum of every epoch's wall time, per L (over seeds) and in all. */
export const trainingTime = (times: readonly TrainingTimeRow[]) => {
  const perDepth = new Map<number, number>();
  for (const t of times) perDepth.set(t.L, (perDepth.get(t.L) ?? 0) + t.seconds);
  return { perDepth, total: [...perDepth.values()].reduce((a, b) => a + b, 0) };
};

/** The block's markdown, markers included. */
export const readmeBlock = (input: ReadmeBlockInput): string => {
  const { start, end } = blockMarkers(input.name);
  const trained = [...new Set(input.sectionsAcrossSeeds.map((r) => r.depth))].sort((a, b) => a - b);
  const missing = input.configuredDepths.filter((L) => !trained.includes(L));
  const time = trainingTime(input.trainingTimes);
  const network = input.sectionsAcrossSeeds.filter((r) => r.section === -1).sort((a, b) => a.depth - b.depth);
  const blocks: Block[] = [
    {
      kind: "heading",
      level: 2,
      text: `Result: ${input.datasetName}, L = ${listWords(trained.map(String))} (preset ${input.name})`,
    },
    ...(missing.length === 0
      ? []
      : [
          {
            kind: "paragraph" as const,
            text:
              `> **Partial result**: the depths trained so far are L = ${listWords(trained.map(String))}; ` +
              `L = ${listWords(missing.map(String))} of this configuration are still to come. ` +
              "Regenerate this block when the run has finished.",
          },
        ]),
    {
      kind: "paragraph",
      text: `![Figure 7: mean scaled perturbation against depth](${input.reportDir}/fig7-mean-scaled-perturbation.png)`,
    },
    { kind: "table", table: stopRuleTable(input.rules) },
    ...(input.paper === null
      ? []
      : [{ kind: "list" as const, items: summarySentences({ ...input, paper: input.paper }) }]),
    {
      kind: "table",
      table: {
        header: ["L", "test error", "training time"],
        align: ["right", "right", "right"],
        rows: network.map((r) => [
          String(r.depth),
          formatPercent(r.testError),
          formatDuration(time.perDepth.get(r.depth) ?? 0),
        ]),
      },
    },
    {
      kind: "paragraph",
      text:
        `Reproduce it (measured: ${formatDuration(time.total)} of training on this machine, the sum of every train ` +
        "node's epochs; the full report, its figures and tables are in " +
        `[${input.reportDir}/report.md](${input.reportDir}/report.md)):`,
    },
  ];
  const generated = `<!-- generated from ${input.reportDir}'s tables by scripts/readme-report.ts; do not edit by hand -->`;
  return [start, generated, toMarkdown(blocks).trimEnd(), "", "```sh", input.command, "```", end].join("\n");
};

/**
 * A short findings block for a side result (e.g. the smoke run): test error per L and the fitted exponents, with a
 * link to the full report and the command that reproduces it; markers as in {@link readmeBlock}.
 */
export const readmeFindingsBlock = (input: ReadmeBlockInput): string => {
  const { start, end } = blockMarkers(input.name);
  const network = input.sectionsAcrossSeeds.filter((r) => r.section === -1).sort((a, b) => a.depth - b.depth);
  const errors = network.map((r) => `${formatPercent(r.testError)} at L = ${r.depth}`);
  const items = [
    `Test error: ${listWords(errors)}.`,
    ...(input.paper === null ? [] : [exponentSentence({ ...input, paper: input.paper })]),
  ];
  const blocks: Block[] = [
    { kind: "list", items },
    {
      kind: "paragraph",
      text: `The report with all figures and tables is in [${input.reportDir}/report.md](${input.reportDir}/report.md):`,
    },
  ];
  const generated = `<!-- generated from ${input.reportDir}'s tables by scripts/readme-report.ts; do not edit by hand -->`;
  return [start, generated, toMarkdown(blocks).trimEnd(), "", "```sh", input.command, "```", end].join("\n");
};

/** `readme` with the block named `name` replaced by `block`; the markers must be there, once each, in order. */
export const replaceReadmeBlock = (readme: string, name: string, block: string): string => {
  const { start, end } = blockMarkers(name);
  const from = readme.indexOf(start);
  const to = readme.indexOf(end);
  if (from < 0 || to < from || readme.indexOf(start, from + 1) >= 0) {
    throw new Error(`the README needs one "${start}" line followed by one "${end}" line`);
  }
  return readme.slice(0, from) + block + readme.slice(to + end.length);
};
