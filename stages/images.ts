/** Reads the image tables that `preprocess` writes into the flat uint8 arrays the training code wants. */
import { Effect } from "effect";
import { fail, type Upstream } from "../pipeline/stage.ts";
import type { preprocess } from "./preprocess.ts";

export interface Images {
  readonly images: Uint8Array;
  readonly labels: Uint8Array;
  readonly count: number;
}

/** The first `limit` images (0 = all) of a split, pixels HWC interleaved uint8. */
export const readImages = (data: Upstream<typeof preprocess>, split: "train" | "test", imageBytes: number, limit = 0) =>
  Effect.gen(function* () {
    const rows = yield* data.readTable(split);
    const count = limit > 0 ? Math.min(limit, rows.length) : rows.length;
    const images = new Uint8Array(count * imageBytes);
    const labels = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const row = rows[i]!;
      if (row.index !== i || row.pixels.length !== imageBytes) {
        return yield* fail(`${split} row ${i} is malformed (index ${row.index}, ${row.pixels.length} bytes)`);
      }
      images.set(row.pixels, i * imageBytes);
      labels[i] = row.label;
    }
    return { images, labels, count } satisfies Images;
  });

/** The per-channel mean and std that preprocess computed from the training split. */
export const readChannelStats = (data: Upstream<typeof preprocess>) =>
  Effect.gen(function* () {
    const rows = [...(yield* data.readTable("stats"))].sort((a, b) => a.channel - b.channel);
    return { mean: rows.map((r) => r.mean), std: rows.map((r) => r.std) };
  });
