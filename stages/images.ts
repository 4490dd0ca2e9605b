/** Reads the image tables that `preprocess` writes into the flat uint8 arrays the training code wants. */
import { Effect } from "effect";
import { fail, StageIO, type Row } from "../pipeline/stage.ts";

export interface Images {
  readonly images: Uint8Array;
  readonly labels: Uint8Array;
  readonly count: number;
}

/** The first `limit` images (0 = all) of a split, pixels HWC interleaved uint8. */
export const readImages = (input: string, split: "train" | "test", imageBytes: number, limit = 0) =>
  Effect.gen(function* () {
    const io = yield* StageIO;
    const rows: ReadonlyArray<Row> = yield* io.readTable(input, split);
    const count = limit > 0 ? Math.min(limit, rows.length) : rows.length;
    const images = new Uint8Array(count * imageBytes);
    const labels = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const row = rows[i]!;
      const pixels = row.pixels as Uint8Array;
      if (row.index !== i || pixels.length !== imageBytes) {
        return yield* fail(`${split} row ${i} is malformed (index ${row.index}, ${pixels.length} bytes)`);
      }
      images.set(pixels, i * imageBytes);
      labels[i] = row.label as number;
    }
    return { images, labels, count } satisfies Images;
  });

/** The per-channel mean and std that preprocess computed from the training split. */
export const readChannelStats = (input: string) =>
  Effect.gen(function* () {
    const io = yield* StageIO;
    const rows = [...(yield* io.readTable(input, "stats"))].sort((a, b) => (a.channel as number) - (b.channel as number));
    return { mean: rows.map((r) => r.mean as number), std: rows.map((r) => r.std as number) };
  });
