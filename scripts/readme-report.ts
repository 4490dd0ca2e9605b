/**
 * Regenerates the README's headline block of a report from the tables the report node wrote beside report.md:
 *
 *   npx tsx scripts/readme-report.ts --preset mnist-cpu [--report docs/reports/mnist-cpu] [--readme README.md]
 *   npx tsx scripts/readme-report.ts --preset smoke --report docs/smoke-report --brief
 *
 * The block sits between `<!-- report:PRESET:start -->` and `<!-- report:PRESET:end -->`; everything in it (the
 * figure link, the stop-rule table, the comparison with the paper, test error and training time per L, the command)
 * comes from the report's Parquet tables, so the README's numbers are the report's. It is marked partial while the
 * report holds fewer depths than the preset asks for. `--brief` writes only test error per L and the exponents
 * (the smoke run's findings under its log).
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readParquet } from "../pipeline/parquet.ts";
import type { FitRow, SectionSeedSummaryRow, StopRuleRow } from "../science/analysis.ts";
import { DATASETS } from "../science/data/datasets.ts";
import { PAPER_MNIST } from "../science/report/paper.ts";
import {
  readmeBlock,
  readmeFindingsBlock,
  replaceReadmeBlock,
  type TrainingTimeRow,
} from "../science/report/readme.ts";
import { DEFAULT_CONFIG, PRESETS } from "../stages/config.ts";

const { values } = parseArgs({
  options: {
    preset: { type: "string" },
    report: { type: "string" },
    readme: { type: "string", default: "README.md" },
    brief: { type: "boolean", default: false },
  },
});
const preset = values.preset;
if (preset === undefined || !(preset in PRESETS)) {
  console.error(
    `usage: readme-report --preset ${Object.keys(PRESETS).join("|")} [--report DIR] [--readme FILE] [--brief]`,
  );
  process.exit(2);
}
const reportDir = values.report ?? `docs/reports/${preset}`;
const table = async <T>(name: string): Promise<T[]> => {
  try {
    return (await readParquet(join(reportDir, `${name}.parquet`))) as unknown as T[];
  } catch (e) {
    const hint = `run the report with --out ${reportDir}`;
    console.error(`cannot read ${name}.parquet in ${reportDir} (${hint}): ${(e as Error).message}`);
    process.exit(1);
  }
};

const rules = await table<StopRuleRow>("rules");
const dataset = rules[0]?.dataset === "cifar10" ? "cifar10" : "mnist";
type PresetDepths = { readonly [D in typeof dataset]?: { readonly depths?: readonly number[] } };
const presetConfig: PresetDepths = PRESETS[preset as keyof typeof PRESETS];
const block = (values.brief ? readmeFindingsBlock : readmeBlock)({
  name: preset,
  datasetName: DATASETS[dataset].displayName,
  reportDir,
  command: `npx pipeline run report --preset ${preset} --data-dir ../shared/datasets --out ${reportDir}`,
  configuredDepths: presetConfig[dataset]?.depths ?? DEFAULT_CONFIG[dataset].depths,
  eps: rules[0]?.epsilon ?? DEFAULT_CONFIG.analysis.eps,
  sectionsAcrossSeeds: await table<SectionSeedSummaryRow>("sectionsAcrossSeeds"),
  fits: await table<FitRow>("fits"),
  rules,
  trainingTimes: await table<TrainingTimeRow>("trainingTimes"),
  paper: dataset === "mnist" ? PAPER_MNIST : null,
});
const readmePath = values.readme;
await writeFile(readmePath, replaceReadmeBlock(await readFile(readmePath, "utf8"), preset, block));
console.error(`wrote the ${preset} block of ${readmePath} from ${reportDir}`);
