/**
 * Parquet reading and writing for table artifacts, via hyparquet-writer and hyparquet (pure JavaScript, columnar).
 * Output bytes depend only on the rows. parquetjs-lite, used before, shredded every row through its generic nested
 * (Dremel) path: 30-65 us per probe row, about 2 minutes for the probe's 3-million-row table, ~10x slower per row than
 * this writer (benchmarks/io.ts, docs/benchmarks.md); it also rounded INT64 values beyond 2^53.
 */
import type * as Hyparquet from "hyparquet";
import type { FileMetaData, SchemaElement } from "hyparquet";
import type * as HyparquetWriter from "hyparquet-writer";
import { describeColumn, type Cell, type Columns, type ColumnType, type FileColumn, type Row } from "./table.ts";

// Type-only imports (erased): the libraries themselves are loaded on first use, below.
type Reader = typeof Hyparquet;
type Writer = typeof HyparquetWriter;

let readerLoading: Promise<Reader> | undefined;
let writerLoading: Promise<Writer> | undefined;

/** The libraries, imported on first use: a fully cached run reads and writes no table and should not load them. */
const reader = (): Promise<Reader> => (readerLoading ??= import("hyparquet"));
const writer = (): Promise<Writer> => (writerLoading ??= import("hyparquet-writer"));

/** Rows per row group: large enough to amortise per-group overhead, small enough to stream. */
const ROW_GROUP_SIZE = 8192;

/** Identifies the writer in the file footer; fixed, so that bytes do not depend on the library's own string. */
const CREATED_BY = "resnet-perturbation-pipeline (hyparquet-writer)";

const schemaElement = (name: string, type: ColumnType, optional: boolean): SchemaElement => ({
  name,
  repetition_type: optional ? "OPTIONAL" : "REQUIRED",
  ...(type === "UTF8" ? { type: "BYTE_ARRAY", converted_type: "UTF8" } : { type }),
});

const parquetSchema = (columns: Columns): SchemaElement[] => [
  { name: "root", num_children: Object.keys(columns).length },
  ...Object.entries(columns).map(([name, col]) => schemaElement(name, col.type, col.optional === true)),
];

/** A type check of one value against its column, so a stage bug fails with the column's name instead of bad bytes. */
const checkCell = (spec: { readonly columns: Columns }, row: Row, rowIndex: number): void => {
  for (const [name, col] of Object.entries(spec.columns)) {
    const v = row[name];
    if (v === null || v === undefined) {
      if (col.optional === true) continue;
      throw new Error(`row ${rowIndex}: column "${name}" is required but missing`);
    }
    const ok =
      col.type === "DOUBLE"
        ? typeof v === "number"
        : col.type === "INT32"
          ? typeof v === "number" && Number.isInteger(v)
          : col.type === "INT64"
            ? (typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint"
            : col.type === "BOOLEAN"
              ? typeof v === "boolean"
              : col.type === "UTF8"
                ? typeof v === "string"
                : v instanceof Uint8Array;
    if (!ok) throw new Error(`row ${rowIndex}: column "${name}" expects ${col.type}, got ${typeof v}`);
  }
  for (const name of Object.keys(row)) {
    if (!(name in spec.columns)) throw new Error(`row ${rowIndex}: unknown column "${name}"`);
  }
};

/** A Parquet file being written: rows go in checked and in order, one row group per ROW_GROUP_SIZE rows. */
export interface ParquetTableWriter {
  /** Checks and buffers one row, writing each full row group; throws on a row that does not fit the columns. */
  readonly writeRow: (row: Row) => void;
  /** Writes the last row group and the footer; returns the row count. */
  readonly finish: () => number;
}

/** Creates (or truncates) a Parquet file for rows of the given columns. */
export const openParquetWriter = async (path: string, columns: Columns): Promise<ParquetTableWriter> => {
  const { ParquetWriter, fileWriter } = await writer();
  const entries = Object.entries(columns);
  const spec = { columns };
  // Uncompressed, as before: the tables are mostly float64 noise that Snappy barely shrinks, and it costs time both
  // ways.
  const out = new ParquetWriter({
    writer: fileWriter(path),
    schema: parquetSchema(columns),
    codec: "UNCOMPRESSED",
    createdBy: CREATED_BY,
  });
  let batch: Row[] = [];
  let count = 0;
  const int64 = (v: Cell) => (typeof v === "number" || typeof v === "bigint" ? BigInt(v) : null);
  // write() and finish() are typed as maybe returning a promise, for writers whose flush() is asynchronous;
  // fileWriter has no flush() and writes with fs.writeFileSync, so both return undefined once the bytes are written.
  const flush = () => {
    void out.write({
      columnData: entries.map(([name, col]) => ({
        name,
        data: col.type === "INT64" ? batch.map((r) => int64(r[name])) : batch.map((r) => r[name] ?? null),
      })),
      rowGroupSize: ROW_GROUP_SIZE,
    });
    batch = [];
  };
  return {
    writeRow: (row) => {
      checkCell(spec, row, count);
      batch.push(row);
      count++;
      if (batch.length === ROW_GROUP_SIZE) flush();
    },
    finish: () => {
      if (batch.length > 0) flush();
      void out.finish(); // synchronous with fileWriter: see flush
      return count;
    },
  };
};

/** Writes rows to a Parquet file, one row group of ROW_GROUP_SIZE rows at a time; returns the row count. */
export const writeParquet = async (
  path: string,
  spec: { readonly columns: Columns },
  rows: Iterable<Row> | AsyncIterable<Row>,
): Promise<number> => {
  const out = await openParquetWriter(path, spec.columns);
  for await (const row of rows) out.writeRow(row);
  return out.finish();
};

const openFile = async (path: string) => {
  const { asyncBufferFromFile, parquetMetadataAsync } = await reader();
  const file = await asyncBufferFromFile(path);
  return { file, metadata: await parquetMetadataAsync(file) };
};

export const parquetRowCount = async (path: string): Promise<number> =>
  Number((await openFile(path)).metadata.num_rows);

/** The columns of a file's footer, in order; UTF8 for UTF-8 strings. */
const fileColumns = (metadata: FileMetaData): FileColumn[] =>
  metadata.schema.slice(1).map((e) => ({
    name: e.name,
    type: e.converted_type === "UTF8" ? "UTF8" : String(e.type),
    optional: e.repetition_type === "OPTIONAL",
  }));

/** Column names and types of a Parquet file, in order, as `name TYPE` (`?` marks a nullable column). */
export const parquetColumns = async (path: string): Promise<string[]> =>
  fileColumns((await openFile(path)).metadata).map(describeColumn);

/** INT64 cells read as numbers when exact, as bigints beyond 2^53; every absent value as null. */
const normalise = (row: Record<string, unknown>): Row => {
  for (const [k, v] of Object.entries(row)) {
    if (typeof v === "bigint") row[k] = v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v;
    else if (v === undefined) row[k] = null;
  }
  return row as Row;
};
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A Parquet file open for reading, one row group at a time. */
export interface ParquetTableReader {
  readonly columns: ReadonlyArray<FileColumn>;
  readonly rowGroups: number;
  /** The rows of one row group, in order; absent optional values read as null. */
  readonly readRowGroup: (index: number) => Promise<Row[]>;
}

export const openParquetReader = async (path: string): Promise<ParquetTableReader> => {
  const { parquetReadObjects } = await reader();
  const { file, metadata } = await openFile(path);
  const starts: number[] = [0];
  for (const group of metadata.row_groups) starts.push(starts[starts.length - 1]! + Number(group.num_rows));
  return {
    columns: fileColumns(metadata),
    rowGroups: metadata.row_groups.length,
    readRowGroup: async (index) => {
      const [rowStart, rowEnd] = [starts[index]!, starts[index + 1]!];
      return (await parquetReadObjects({ file, metadata, rowStart, rowEnd, utf8: false })).map(normalise);
    },
  };
};

/**
 * Streams rows in batches of at most `batchSize`, one row group read at a time; absent optional values read as null.
 */
export const readParquetBatches = async (
  path: string,
  onBatch: (rows: ReadonlyArray<Row>) => Promise<void>,
  batchSize = ROW_GROUP_SIZE,
): Promise<number> => {
  const table = await openParquetReader(path);
  let count = 0;
  for (let group = 0; group < table.rowGroups; group++) {
    const rows = await table.readRowGroup(group);
    for (let k = 0; k < rows.length; k += batchSize) await onBatch(rows.slice(k, k + batchSize));
    count += rows.length;
  }
  return count;
};

export const readParquet = async (path: string): Promise<Row[]> => {
  const out: Row[] = [];
  await readParquetBatches(path, async (rows) => {
    out.push(...rows);
  });
  return out;
};
