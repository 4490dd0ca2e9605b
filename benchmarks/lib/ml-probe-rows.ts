/**
 * The probe stage's data path without the engine: science/probe.ts probeBatches (rows batch by batch, each computed
 * when the writer asks for it) into pipeline/parquet.ts writeParquet with the stage's own column spec.
 * Also synthetic probe-shaped rows for the artifact I/O benchmark.
 */
import type { Row } from "../../pipeline/table.ts";
import { writeParquet } from "../../pipeline/parquet.ts";
import {
  addToSummary,
  EMPTY_PROBE_SUMMARY,
  probeBatches,
  type ProbeImages,
  type ProbeSummary,
} from "../../science/probe.ts";
import type { ResNet, TF } from "../../science/resnet.ts";
import { probe } from "../../stages/probe.ts";

/** The probe artifact's table spec, exactly as the stage declares it. */
export const PROBE_TABLE = (() => {
  const spec = probe.outputs["perturbations"];
  if (spec === undefined || spec.kind !== "table")
    throw new Error("stages/probe.ts no longer declares a perturbations table");
  return spec;
})();

/** Probes `data` and writes the rows to `file` concurrently, as the probe stage does; `onBatch` runs per batch. */
export async function probeToParquet(
  tf: TF,
  model: ResNet,
  data: ProbeImages,
  options: { batchSize: number; mean: ReadonlyArray<number>; std: ReadonlyArray<number>; onBatch?: () => void },
  file: string,
): Promise<{ summary: ProbeSummary; written: number }> {
  const { batchSize, mean, std, onBatch } = options;
  let summary = EMPTY_PROBE_SUMMARY;
  async function* rows(): AsyncGenerator<Row> {
    for await (const batch of probeBatches(tf, model, data, { batchSize, mean, std })) {
      summary = addToSummary(summary, batch);
      yield* batch.rows;
      onBatch?.();
    }
  }
  const written = await writeParquet(file, PROBE_TABLE, rows());
  return { summary, written };
}

/**
 * Rows shaped like a probe table of L blocks x 3 sections x `images` images, in the stage's order (section, block,
 * image), with plausible values: norms around 10, a small residual, cosines near 1, and a null scaled/cosine for
 * every 1000th image (a zero input), so optional columns carry definition levels as in real tables.
 */
export function* syntheticProbeRows(blocks: number, images: number): Generator<Row> {
  for (let section = 0; section < 3; section++) {
    for (let block = 0; block < blocks; block++) {
      for (let image = 0; image < images; image++) {
        const inputNorm = image % 1000 === 0 ? 0 : 5 + ((image * 7919 + block * 31 + section) % 1000) / 100;
        const abs = 0.05 + ((image * 104729 + block) % 997) / 1000;
        const outputNorm = inputNorm + abs / 2;
        yield {
          section,
          block,
          image,
          abs,
          scaled: inputNorm === 0 ? null : abs / inputNorm,
          cosine: inputNorm === 0 ? null : 1 - abs / (100 * outputNorm),
          inputNorm,
          outputNorm,
        };
      }
    }
  }
}
