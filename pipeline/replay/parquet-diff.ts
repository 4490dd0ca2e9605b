/** Value-level comparison of two Parquet tables, for replay's mismatch details. */
import { canonicalJson } from "../hash.ts";
import { parquetColumns, parquetRowCount, readParquetBatches } from "../parquet.ts";
import type { Cell } from "../table.ts";

/** Every value of one column, in row order (one column at a time keeps memory to a column, not a table). */
const columnValues = async (path: string, column: string): Promise<Cell[]> => {
  const values: Cell[] = [];
  await readParquetBatches(path, async (rows) => {
    for (const row of rows) values.push(row[column]);
  });
  return values;
};

const sameCell = (a: Cell, b: Cell): boolean => {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(Buffer.from(b));
  if ((a ?? null) === null || (b ?? null) === null) return (a ?? null) === (b ?? null);
  return Object.is(a, b);
};

const showCell = (v: Cell): string => {
  if (v === null || v === undefined) return "null";
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return String(v);
};

const showPair = (a: Cell, b: Cell, labels: readonly [string, string]): string => {
  const [la, lb] = labels.map((l) => (l === "" ? "" : `${l} `));
  if (a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length) {
    const at = a.findIndex((x, i) => x !== b[i]);
    return `${la}${showCell(a)} vs ${lb}${showCell(b)}, first at byte ${at}: ${a[at]} vs ${b[at]}`;
  }
  return `${la}${showCell(a)} vs ${lb}${showCell(b)}`;
};

/**
 * What differs between two Parquet tables, compared by value: the schema, then the row count, then column by column
 * in schema order the first row whose values differ. Undefined when every value is identical (the bytes may still
 * differ, e.g. in metadata). `labels` name the two sides in the message.
 */
export const diffParquet = async (
  a: string,
  b: string,
  labels: readonly [string, string] = ["", ""],
): Promise<string | undefined> => {
  const [columnsA, columnsB] = [await parquetColumns(a), await parquetColumns(b)];
  if (canonicalJson(columnsA) !== canonicalJson(columnsB)) {
    return `schema differs (${columnsA.join(", ")} vs ${columnsB.join(", ")})`;
  }
  const [rowsA, rowsB] = [await parquetRowCount(a), await parquetRowCount(b)];
  if (rowsA !== rowsB) return `row count ${rowsA} vs ${rowsB}`;
  for (const column of columnsA.map((c) => c.split(" ")[0]!)) {
    const [valuesA, valuesB] = [await columnValues(a, column), await columnValues(b, column)];
    const rows = Math.max(valuesA.length, valuesB.length);
    for (let row = 0; row < rows; row++) {
      if (row >= valuesA.length || row >= valuesB.length)
        return `row count ${valuesA.length} vs ${valuesB.length} (read)`;
      if (!sameCell(valuesA[row], valuesB[row])) {
        return `column ${column} differs first at row ${row} (${showPair(valuesA[row], valuesB[row], labels)})`;
      }
    }
  }
  return undefined;
};
