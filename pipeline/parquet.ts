/**
 * Parquet reading and writing for table artifacts, via hyparquet-writer and hyparquet (pure JavaScript, columnar).
 * Output bytes depend only on the rows. parquetjs-lite, used before, shredded every row through its generic nested
 * (Dremel) path: 30-65 us per probe row, about 2 minutes for the probe's 3-million-row table, ~10x slower per row than
 * this writer (benchmarks/io.ts, docs/benchmarks.md); it also rounded INT64 values beyond 2^53.
 */
import type { Cell, ColumnType, Row, TableOutput } from "./stage.ts";

type Reader = typeof import("hyparquet");
type Writer = typeof import("hyparquet-writer");

let readerLoading: Promise<Reader> | undefined;
let writerLoading: Promise<Writer> | undefined;

/** The libraries, imported on first use: a fully cached run reads and writes no table and should not load them. */
const reader = (): Promise<Reader> => (readerLoading ??= import("hyparquet"));
const writer = (): Promise<Writer> => (writerLoading ??= import("hyparquet-writer"));

/** Rows per row group: large enough to amortise per-group overhead, small enough to stream. */
const ROW_GROUP_SIZE = 8192;

/** Identifies the writer in the file footer; fixed, so that bytes do not depend on the library's own string. */
const CREATED_BY = "resnet-perturbation-pipeline (hyparquet-writer)";

type SchemaElement = import("hyparquet").SchemaElement;

const schemaElement = (name: string, type: ColumnType, optional: boolean): SchemaElement => ({
  name,
  repetition_type: optional ? "OPTIONAL" : "REQUIRED",
  ...(type === "UTF8" ? { type: "BYTE_ARRAY", converted_type: "UTF8" } : { type }),
});

const parquetSchema = (spec: TableOutput): SchemaElement[] => [
  { name: "root", num_children: Object.keys(spec.columns).length },
  ...Object.entries(spec.columns).map(([name, col]) => schemaElement(name, col.type, col.optional === true)),
];

/** A type check of one value against its column, so a stage bug fails with the column's name instead of bad bytes. */
export const checkCell = (spec: TableOutput, row: Row, rowIndex: number): void => {
  for (const [name, col] of Object.entries(spec.columns)) {
    const v = row[name];
    if (v === null || v === undefined) {
      if (col.optional === true) continue;
      throw new Error(`row ${rowIndex}: column "${name}" is required but missing`);
    }
    const ok =
      col.type === "DOUBLE" ? typeof v === "number"
      : col.type === "INT32" ? typeof v === "number" && Number.isInteger(v)
      : col.type === "INT64" ? (typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint"
      : col.type === "BOOLEAN" ? typeof v === "boolean"
      : col.type === "UTF8" ? typeof v === "string"
      : v instanceof Uint8Array;
    if (!ok) throw new Error(`row ${rowIndex}: column "${name}" expects ${col.type}, got ${typeof v}`);
  }
  for (const name of Object.keys(row)) {
    if (!(name in spec.columns)) throw new Error(`row ${rowIndex}: unknown column "${name}"`);
  }
};

/** Writes rows to a Parquet file, one row group of ROW_GROUP_SIZE rows at a time; returns the row count. */
export const writeParquet = async <T extends { readonly [K in keyof T]: Cell }>(
  path: string,
  spec: TableOutput,
  rows: Iterable<T> | AsyncIterable<T>,
): Promise<number> => {
  const { ParquetWriter, fileWriter } = await writer();
  const columns = Object.entries(spec.columns);
  // Uncompressed, as before: the tables are mostly float64 noise that Snappy barely shrinks, and it costs time both ways.
  const out = new ParquetWriter({ writer: fileWriter(path), schema: parquetSchema(spec), codec: "UNCOMPRESSED", createdBy: CREATED_BY });
  let batch: Row[] = [];
  let count = 0;
  const flush = () => {
    out.write({
      columnData: columns.map(([name, col]) => ({
        name,
        data:
          col.type === "INT64"
            ? batch.map((r) => (r[name] === null || r[name] === undefined ? null : BigInt(r[name] as number | bigint)))
            : batch.map((r) => r[name] ?? null),
      })),
      rowGroupSize: ROW_GROUP_SIZE,
    });
    batch = [];
  };
  for await (const typed of rows) {
    const row = typed as Row;
    checkCell(spec, row, count);
    batch.push(row);
    count++;
    if (batch.length === ROW_GROUP_SIZE) flush();
  }
  if (batch.length > 0) flush();
  out.finish();
  return count;
};

const openFile = async (path: string) => {
  const { asyncBufferFromFile, parquetMetadataAsync } = await reader();
  const file = await asyncBufferFromFile(path);
  return { file, metadata: await parquetMetadataAsync(file) };
};

export const parquetRowCount = async (path: string): Promise<number> => Number((await openFile(path)).metadata.num_rows);

/** Column names and types of a Parquet file, in order, as `name TYPE` (`?` marks a nullable column). */
export const parquetColumns = async (path: string): Promise<string[]> =>
  (await openFile(path)).metadata.schema
    .slice(1)
    .map((e) => `${e.name} ${e.converted_type === "UTF8" ? "UTF8" : e.type}${e.repetition_type === "OPTIONAL" ? "?" : ""}`);

/** INT64 cells read as numbers when exact, as bigints beyond 2^53; every absent value as null. */
const normalise = (row: Record<string, unknown>): Row => {
  for (const [k, v] of Object.entries(row)) {
    if (typeof v === "bigint") row[k] = v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v;
    else if (v === undefined) row[k] = null;
  }
  return row as Row;
};
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Streams rows in batches of at most `batchSize`, one row group read at a time; absent optional values read as null. */
export const readParquetBatches = async (
  path: string,
  onBatch: (rows: ReadonlyArray<Row>) => Promise<void>,
  batchSize = ROW_GROUP_SIZE,
): Promise<number> => {
  const { parquetReadObjects } = await reader();
  const { file, metadata } = await openFile(path);
  let start = 0;
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows);
    const rows = (await parquetReadObjects({ file, metadata, rowStart: start, rowEnd: end, utf8: false })).map(normalise);
    for (let k = 0; k < rows.length; k += batchSize) await onBatch(rows.slice(k, k + batchSize));
    start = end;
  }
  return start;
};

export const readParquet = async (path: string): Promise<Row[]> => {
  const out: Row[] = [];
  await readParquetBatches(path, async (rows) => {
    out.push(...rows);
  });
  return out;
};
