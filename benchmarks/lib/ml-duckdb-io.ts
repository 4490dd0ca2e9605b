/**
 * DuckDB as a Parquet reader and writer for probe-shaped tables, to compare with pipeline/parquet.ts
 * (hyparquet-writer/hyparquet) and the old parquetjs-lite code (lib/parquetjs-io.ts) in benchmarks/io.ts.
 *
 * The writer is the prototype that motivated replacing parquetjs-lite (20x faster than it at 3M rows). It is kept,
 * although pure-JS hyparquet-writer replaced parquetjs-lite instead, because it still measures what hyparquet-writer
 * leaves on the table: a native writer fed the same JavaScript row objects (`duckdbWriteParquet`: rows gathered into
 * column arrays of 2,048, DuckDB's vector size, and appended as data chunks), and one that sees no JavaScript values
 * at all (`duckdbWriteGenerated`: the same table generated inside DuckDB, an upper bound). (A writer with one
 * appender call per value was dropped: it was always slower than the chunks and adds nothing.)
 * Writers run with `threads = 1` so the file's bytes depend only on the rows (checked by the benchmark).
 */
import {
  DOUBLE,
  DuckDBDataChunk,
  DuckDBInstance,
  INTEGER,
  type DuckDBConnection,
  type DuckDBType,
} from "@duckdb/node-api";
import type { Row, TableOutput } from "../../pipeline/table.ts";

const quoteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;
const quoteString = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** Runs `f` on a fresh in-memory database with one thread. */
export async function withDuckDb<T>(f: (connection: DuckDBConnection) => Promise<T>, threads = 1): Promise<T> {
  const instance = await DuckDBInstance.create(":memory:", {
    threads: String(threads),
    autoinstall_known_extensions: "false",
  });
  const connection = await instance.connect();
  try {
    return await f(connection);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

const duckType = (type: string): { sql: string; type: DuckDBType } => {
  if (type === "INT32") return { sql: "INTEGER", type: INTEGER };
  if (type === "DOUBLE") return { sql: "DOUBLE", type: DOUBLE };
  throw new Error(`ml-duckdb-io handles INT32 and DOUBLE columns, not ${type}`);
};

/** CREATE TABLE for the spec's columns, in spec order (NOT NULL for required ones, as in the Parquet schema). */
const createTable = (name: string, spec: TableOutput): string =>
  `CREATE TABLE ${name} (${Object.entries(spec.columns)
    .map(([column, c]) => `${quoteIdentifier(column)} ${duckType(c.type).sql}${c.optional === true ? "" : " NOT NULL"}`)
    .join(", ")})`;

/**
 * COPY to Parquet with DuckDB's defaults (dictionary encoding where it pays, Snappy). The dictionary used to be
 * turned off because parquetjs-lite, the pipeline's old reader, decoded DuckDB's dictionary-encoded INT32 columns as
 * strings; hyparquet reads them.
 */
const copyTo = (table: string, file: string): string => `COPY ${table} TO ${quoteString(file)} (FORMAT parquet)`;

/**
 * Writes `rows` (spec columns, INT32/DOUBLE only) to a Parquet file through DuckDB's appender, by data chunks;
 * returns the row count.
 */
export async function duckdbWriteParquet(
  file: string,
  spec: TableOutput,
  rows: Iterable<Row> | AsyncIterable<Row>,
): Promise<number> {
  const names = Object.keys(spec.columns);
  const types = Object.values(spec.columns).map((c) => duckType(c.type).type);
  return withDuckDb(async (connection) => {
    await connection.run(createTable("t", spec));
    const appender = await connection.createAppender("t");
    const chunkRows = 2048;
    let count = 0;
    let columns: Array<Array<number | null>> = names.map(() => []);
    const flush = () => {
      if (columns[0]!.length === 0) return;
      const chunk = DuckDBDataChunk.create(types);
      chunk.setColumns(columns);
      appender.appendDataChunk(chunk);
      columns = names.map(() => []);
    };
    for await (const row of rows) {
      for (let j = 0; j < names.length; j++) columns[j]!.push((row[names[j]!] as number | null | undefined) ?? null);
      if (++count % chunkRows === 0) flush();
    }
    flush();
    appender.closeSync();
    await connection.run(copyTo("t", file));
    return count;
  });
}

/**
 * The probe table of `blocks` x 3 sections x `images` images generated inside DuckDB with the same columns and
 * the same value formulas as lib/ml-probe-rows.ts syntheticProbeRows, written with COPY.
 */
export async function duckdbWriteGenerated(file: string, blocks: number, images: number): Promise<number> {
  return withDuckDb(async (connection) => {
    const inputNorm = `(case when image % 1000 = 0 then 0.0 else 5 + ((image * 7919 + block * 31 + section) % 1000) / 100.0 end)`;
    const abs = `(0.05 + ((image * 104729 + block) % 997) / 1000.0)`;
    await connection.run(`
      CREATE TABLE t AS
      SELECT section::INTEGER AS section, block::INTEGER AS block, image::INTEGER AS image, abs,
             case when inputNorm = 0 then null else abs / inputNorm end AS scaled,
             case when inputNorm = 0 then null else 1 - abs / (100 * (inputNorm + abs / 2)) end AS cosine,
             inputNorm AS "inputNorm", inputNorm + abs / 2 AS "outputNorm"
      FROM (SELECT section, block, image, ${abs} AS abs, ${inputNorm} AS inputNorm
            FROM range(3) s(section), range(${blocks}) b(block), range(${images}) i(image))
      ORDER BY section, block, image`);
    await connection.run(copyTo("t", file));
    const reader = await connection.runAndReadAll("select count(*)::INTEGER as n from t");
    return reader.getRowObjectsJS()[0]!["n"] as number;
  });
}

/** A query over the file as view `t`, results as JS objects. */
export async function duckdbQuery(file: string, sql: string, threads = 2): Promise<Record<string, unknown>[]> {
  return withDuckDb(async (connection) => {
    await connection.run(`CREATE VIEW t AS SELECT * FROM read_parquet(${quoteString(file)})`);
    return (await connection.runAndReadAll(sql)).getRowObjectsJS();
  }, threads);
}

/**
 * Streams every row of the file into JavaScript, chunk by chunk (in file order: DuckDB preserves insertion order),
 * column values as JS numbers/null; `onChunk` sees each chunk's columns, named as in the file. Returns the row count
 * and the sum of `abs`.
 */
export async function duckdbScanToJs(
  file: string,
  threads = 2,
  onChunk?: (columns: ReadonlyArray<ReadonlyArray<unknown>>, names: ReadonlyArray<string>) => void,
): Promise<{ rows: number; absSum: number }> {
  return withDuckDb(async (connection) => {
    const result = await connection.stream(`SELECT * FROM read_parquet(${quoteString(file)})`);
    const names = result.columnNames();
    const absColumn = names.indexOf("abs");
    let rows = 0;
    let absSum = 0;
    for (
      let chunk = await result.fetchChunk();
      chunk !== null && chunk.rowCount > 0;
      chunk = await result.fetchChunk()
    ) {
      const columns = chunk.getColumns();
      rows += chunk.rowCount;
      for (const v of columns[absColumn]!) absSum += v as number;
      onChunk?.(columns, names);
    }
    return { rows, absSum };
  }, threads);
}
