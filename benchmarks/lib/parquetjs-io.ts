/**
 * The pipeline's Parquet writer and reader before commit 41ee7bf (pipeline/parquet.ts on parquetjs-lite), kept only
 * so that benchmarks/io.ts can measure the switch to hyparquet-writer/hyparquet against it. Same row group size
 * (8,192) and null handling as the old pipeline code, without its per-row type check (~3 us a row, which our writer
 * still pays), so the measured speed-up is a lower bound; parquetjs-lite is a devDependency for this file alone.
 */
import type { Cell, Row, TableOutput } from "../../pipeline/table.ts";
import type parquetjs from "parquetjs-lite";

type ParquetLib = typeof parquetjs;

let loading: Promise<ParquetLib> | undefined;

/** parquetjs-lite, imported on first use. */
const parquetLib = (): Promise<ParquetLib> => (loading ??= import("parquetjs-lite").then((m) => m.default));

/** Rows per row group, as in the old pipeline/parquet.ts (and the new one). */
const ROW_GROUP_SIZE = 8192;

const parquetSchema = (parquet: ParquetLib, spec: TableOutput) =>
  new parquet.ParquetSchema(
    Object.fromEntries(
      Object.entries(spec.columns).map(([name, col]) => [
        name,
        col.optional === true ? { type: col.type, optional: true } : { type: col.type },
      ]),
    ),
  );

/** Writes rows through parquetjs-lite's row writer (the old writeParquet); returns the row count. */
export const parquetjsWrite = async <T extends { readonly [K in keyof T]: Cell }>(
  path: string,
  spec: TableOutput,
  rows: Iterable<T> | AsyncIterable<T>,
): Promise<number> => {
  const parquet = await parquetLib();
  const writer = await parquet.ParquetWriter.openFile(parquetSchema(parquet, spec), path, {
    rowGroupSize: ROW_GROUP_SIZE,
  });
  let count = 0;
  try {
    for await (const typed of rows) {
      const row = typed as Row;
      const cells: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(row)) {
        if (v === null || v === undefined) continue;
        cells[k] =
          v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v;
      }
      await writer.appendRow(cells);
      count++;
    }
  } finally {
    await writer.close();
  }
  return count;
};

/**
 * Streams rows through parquetjs-lite's cursor (the old readParquetBatches); absent optional values read as null.
 * Rejects files whose footer says Parquet format version 2 (parquetjs-lite throws the string
 * "invalid parquet version").
 */
export const parquetjsReadBatches = async (
  path: string,
  onBatch: (rows: ReadonlyArray<Row>) => Promise<void>,
  batchSize = ROW_GROUP_SIZE,
): Promise<number> => {
  const reader = await (await parquetLib()).ParquetReader.openFile(path);
  let count = 0;
  try {
    const cursor = reader.getCursor();
    const fields = Object.keys(reader.schema.fields);
    let batch: Row[] = [];
    for (let row = await cursor.next(); row !== null; row = await cursor.next()) {
      for (const f of fields) if (!(f in row)) row[f] = null;
      batch.push(row as Row);
      if (batch.length >= batchSize) {
        await onBatch(batch);
        count += batch.length;
        batch = [];
      }
    }
    if (batch.length > 0) {
      await onBatch(batch);
      count += batch.length;
    }
  } finally {
    await reader.close();
  }
  return count;
};
