/**
 * Artifact I/O of a probe-shaped table (stages/probe.ts's columns: section, block, image INT32; abs, scaled?,
 * cosine?, inputNorm, outputNorm DOUBLE) at L = 100 x 3 sections x 10,000 images = 3 million rows, before and after
 * commit 41ee7bf moved pipeline/parquet.ts from parquetjs-lite to hyparquet-writer/hyparquet:
 *  - write: pipeline/parquet.ts writeParquet (hyparquet-writer) vs the old parquetjs-lite row writer
 *    (lib/parquetjs-io.ts) vs DuckDB's appender fed the same JS rows by data chunks vs DuckDB generating the table
 *    itself (COPY, no JS values: an upper bound); plus the time to only generate the rows (a floor under every
 *    JS-fed writer);
 *  - read: pipeline/parquet.ts readParquetBatches (hyparquet, every row as a JS object) vs DuckDB on the same file:
 *    `select count(*), avg(abs)`, an in-engine full scan (a sum over every column), every value streamed into JS;
 *    and, on the old writer's file (parquetjs-lite cannot read ours: it rejects Parquet format version 2),
 *    parquetjs-lite's cursor vs hyparquet on the same bytes.
 * parquetjs-lite shreds 40-65 us a row (2-3 minutes per 3M-row write), so it runs on a prefix of the same rows
 * (`parquetjsRows`, default 300,000) and is compared per row: its ratios are (parquetjs-lite s/row) / (this s/row),
 * per repeat; writeParquet also writes the same prefix, so one ratio compares equal sizes.
 * Runs interleave (order alternating per repeat), after one untimed warm-up round on 3,000 rows; throughput is rows/s
 * and MB/s (10^6 bytes of the file written or read).
 * Checks (stored with the results, not thrown): hyparquet reads our file back as exactly the generated rows; DuckDB
 * reads our file with identical values (doubles compared bit for bit); hyparquet reads parquetjs-lite's file (the
 * cache's old artifacts) as the same rows; whether parquetjs-lite reads our file; writeParquet's and DuckDB's bytes
 * are the same at every repeat (artifact keys hash bytes).
 *
 *   npx tsx benchmarks/io.ts [--quick] [--blocks 100] [--images 10000] [--repeats 3] [--parquetjs-rows 300000]
 *                            [--out io] [--results-dir DIR]
 * `--quick`: 4 blocks x 1,000 images (12,000 rows, all of them through parquetjs-lite), 2 repeats. Writes
 * benchmarks/results/<out>.json (default io.json, io-quick.json with --quick).
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { readParquetBatches, writeParquet } from "../pipeline/parquet.ts";
import type { Row } from "../pipeline/table.ts";
import { duckdbQuery, duckdbScanToJs, duckdbWriteGenerated, duckdbWriteParquet } from "./lib/ml-duckdb-io.ts";
import { countOption, parseOptions, round, summarize, writeResults, type Summary } from "./lib/measure.ts";
import { PROBE_TABLE, syntheticProbeRows } from "./lib/ml-probe-rows.ts";
import { parquetjsReadBatches, parquetjsWrite } from "./lib/parquetjs-io.ts";

export interface IoBenchmarkOptions {
  /** 4 blocks x 1,000 images, 2 repeats, every row through parquetjs-lite. */
  readonly quick?: boolean;
  /** L, blocks per section (default 100; 4 quick). */
  readonly blocks?: number;
  /** Images per block (default 10,000; 1,000 quick). */
  readonly images?: number;
  /** Timed rounds of every write and read (default 3; 2 quick). */
  readonly repeats?: number;
  /** Rows (a prefix of the table) written and read through parquetjs-lite (default 300,000, at most all rows). */
  readonly parquetjsRows?: number;
  readonly log?: (line: string) => void;
}

export interface Throughput {
  readonly rows: number;
  readonly bytes: number;
  readonly seconds: Summary;
  readonly rowsPerSec: number;
  /** MB (10^6 bytes) of the file written or read, per second (0 where there is no file). */
  readonly mbPerSec: number;
  /** Per repeat: parquetjs-lite's seconds per row / this one's (how many times faster than parquetjs-lite). */
  readonly speedupOverParquetjs?: Summary;
}

/** Whether a reader could read a file as the expected rows, or why not. */
export interface ReadCheck {
  readonly ok: boolean;
  readonly rows?: number;
  readonly error?: string;
}

export interface IoResult {
  readonly benchmark: "io";
  readonly settings: {
    quick: boolean;
    blocks: number;
    images: number;
    rows: number;
    parquetjsRows: number;
    repeats: number;
  };
  readonly loadavg: { readonly start: number[]; readonly end: number[] };
  /** Bytes of each file: ours (writeParquet, all rows), ours on the prefix, parquetjs-lite's (prefix), DuckDB's. */
  readonly fileBytes: Record<string, number>;
  readonly write: Record<string, Throughput>;
  readonly read: Record<string, Throughput>;
  readonly checks: {
    /** readParquetBatches gives back exactly the generated rows (Object.is per value, absent as null). */
    readonly hyparquetRoundTrip: ReadCheck;
    /** DuckDB reads our file as the same values, doubles bit for bit, in order; and counts the rows. */
    readonly duckdbReadsOurFile: ReadCheck;
    /** hyparquet reads parquetjs-lite's file (the form of artifacts cached before 41ee7bf) as the same rows. */
    readonly hyparquetReadsParquetjsFile: ReadCheck;
    /** parquetjs-lite reading our file: a fact, not a requirement (it rejects format version 2). */
    readonly parquetjsReadsOurFile: ReadCheck;
    /** Every timed write of the same rows gave the same bytes (sha256), per writer. */
    readonly deterministicBytes: Record<string, boolean>;
  };
}

const time = async (f: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
};

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The first `count` rows of the probe table (a prefix in the stage's order). */
function* prefix(rows: Iterable<Row>, count: number): Generator<Row> {
  if (count <= 0) return;
  let n = 0;
  for (const row of rows) {
    yield row;
    if (++n >= count) return;
  }
}

const COLUMNS = Object.keys(PROBE_TABLE.columns);

/** A cell for a mismatch message: numbers in full (-0 apart from 0), anything else as JSON. */
const show = (value: unknown): string =>
  typeof value === "number" ? (Object.is(value, -0) ? "-0" : value.toString()) : JSON.stringify(value);

/** Compares streamed rows with the expected ones, value by value (Object.is: doubles bit for bit, -0 apart from 0). */
class RowComparer {
  private readonly expected: Iterator<Row>;
  rows = 0;
  mismatch: string | undefined;

  constructor(expected: Iterable<Row>) {
    this.expected = expected[Symbol.iterator]();
  }

  value(row: number, column: string, actual: unknown, expected: unknown): void {
    const want = expected ?? null;
    const got = actual ?? null;
    if (this.mismatch === undefined && !Object.is(got, want)) {
      this.mismatch = `row ${row} column ${column}: got ${show(got)}, expected ${show(want)}`;
    }
  }

  nextExpected(): Row | undefined {
    const next = this.expected.next();
    return next.done === true ? undefined : next.value;
  }

  row(actual: Row): void {
    const want = this.nextExpected();
    if (want === undefined) {
      this.mismatch ??= `extra row ${this.rows}`;
    } else {
      for (const c of COLUMNS) this.value(this.rows, c, actual[c], want[c]);
      for (const c of Object.keys(actual))
        if (!COLUMNS.includes(c)) this.mismatch ??= `row ${this.rows}: unknown column ${c}`;
    }
    this.rows++;
  }

  /** Columns of one DuckDB chunk, named by `names`. */
  chunk(columns: ReadonlyArray<ReadonlyArray<unknown>>, names: ReadonlyArray<string>): void {
    const length = columns[0]?.length ?? 0;
    for (let i = 0; i < length; i++) {
      const want = this.nextExpected();
      if (want === undefined) this.mismatch ??= `extra row ${this.rows}`;
      else for (let j = 0; j < names.length; j++) this.value(this.rows, names[j]!, columns[j]![i], want[names[j]!]);
      this.rows++;
    }
  }

  result(expectedRows: number): ReadCheck {
    const missing = this.rows < expectedRows ? `read ${this.rows} rows, expected ${expectedRows}` : undefined;
    const error = this.mismatch ?? missing;
    return error === undefined ? { ok: true, rows: this.rows } : { ok: false, rows: this.rows, error };
  }
}

/** Reads `file` with a row reader (readParquetBatches, parquetjsReadBatches) and compares its rows with `expected`. */
export async function readCheck(
  read: (file: string, onBatch: (rows: ReadonlyArray<Row>) => Promise<void>) => Promise<number>,
  file: string,
  expected: Iterable<Row>,
  expectedRows: number,
): Promise<ReadCheck> {
  const comparer = new RowComparer(expected);
  try {
    await read(file, async (batch) => {
      for (const row of batch) comparer.row(row);
    });
  } catch (error) {
    return { ok: false, error: errorText(error) };
  }
  return comparer.result(expectedRows);
}

/** Streams `file` through DuckDB and compares every value with `expected` (doubles bit for bit, in file order). */
export async function duckdbCheck(file: string, expected: Iterable<Row>, expectedRows: number): Promise<ReadCheck> {
  const comparer = new RowComparer(expected);
  try {
    await duckdbScanToJs(file, 2, (columns, names) => comparer.chunk(columns, names));
  } catch (error) {
    return { ok: false, error: errorText(error) };
  }
  return comparer.result(expectedRows);
}

/** Runs the benchmark, prints its table through `log`, and returns JSON-safe results. */
export async function runIoBenchmark(options: IoBenchmarkOptions = {}): Promise<IoResult> {
  const quick = options.quick ?? false;
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const blocks = options.blocks ?? (quick ? 4 : 100);
  const images = options.images ?? (quick ? 1000 : 10_000);
  const repeats = options.repeats ?? (quick ? 2 : 3);
  const rowCount = 3 * blocks * images;
  const parquetjsRows = Math.min(options.parquetjsRows ?? 300_000, rowCount);
  const onPrefix = parquetjsRows < rowCount;
  const settings = { quick, blocks, images, rows: rowCount, parquetjsRows, repeats };
  const loadStart = loadavg();
  const rows = () => syntheticProbeRows(blocks, images);
  const prefixRows = () => prefix(rows(), parquetjsRows);

  const dir = mkdtempSync(path.join(tmpdir(), "bench-io-"));
  const files = {
    ours: path.join(dir, "ours.parquet"),
    oursPrefix: path.join(dir, "ours-prefix.parquet"),
    parquetjs: path.join(dir, "parquetjs.parquet"),
    duckdbAppender: path.join(dir, "duckdb-appender.parquet"),
    duckdbEngine: path.join(dir, "duckdb-engine.parquet"),
  };
  try {
    log(
      `io: ${rowCount} rows (L=${blocks} x 3 sections x ${images} images), parquetjs-lite on the first ${parquetjsRows}, ` +
        `${repeats} repeats; load ${loadStart.map((l) => l.toFixed(2)).join(" ")}`,
    );

    // One untimed round on a small table: module loading, DuckDB's first instance and the JIT are not measured.
    const warm = path.join(dir, "warm.parquet");
    const warmRows = () => syntheticProbeRows(1, 1000);
    await writeParquet(warm, PROBE_TABLE, warmRows());
    await readParquetBatches(warm, async () => {});
    await parquetjsWrite(`${warm}.pj`, PROBE_TABLE, warmRows());
    await parquetjsReadBatches(`${warm}.pj`, async () => {});
    await duckdbWriteParquet(`${warm}.duck`, PROBE_TABLE, warmRows());
    await duckdbScanToJs(warm);

    /** Per writer, the file's sha256 after every timed write. */
    const hashes: Record<string, Set<string>> = {};
    const writes: Record<string, { rows: number; file?: string; run: () => Promise<unknown> }> = {
      generateOnly: {
        rows: rowCount,
        run: async () => {
          let n = 0;
          for (const _ of rows()) n++;
          if (n !== rowCount) throw new Error(`generated ${n} rows, expected ${rowCount}`);
        },
      },
      hyparquet: { rows: rowCount, file: files.ours, run: () => writeParquet(files.ours, PROBE_TABLE, rows()) },
      ...(onPrefix
        ? {
            hyparquetPrefix: {
              rows: parquetjsRows,
              file: files.oursPrefix,
              run: () => writeParquet(files.oursPrefix, PROBE_TABLE, prefixRows()),
            },
          }
        : {}),
      parquetjs: {
        rows: parquetjsRows,
        file: files.parquetjs,
        run: () => parquetjsWrite(files.parquetjs, PROBE_TABLE, prefixRows()),
      },
      duckdbAppender: {
        rows: rowCount,
        file: files.duckdbAppender,
        run: () => duckdbWriteParquet(files.duckdbAppender, PROBE_TABLE, rows()),
      },
      duckdbEngine: {
        rows: rowCount,
        file: files.duckdbEngine,
        run: () => duckdbWriteGenerated(files.duckdbEngine, blocks, images),
      },
    };
    const writeSeconds = await interleaved(writes, repeats, (name) => {
      const file = writes[name]!.file;
      if (file !== undefined) (hashes[name] ??= new Set()).add(sha256(file));
    });
    const fileBytes = Object.fromEntries(
      Object.entries(files)
        .filter(([, f]) => onPrefix || f !== files.oursPrefix)
        .map(([k, f]) => [k, statSync(f).size]),
    );

    const reads: Record<string, { rows: number; file: string; run: () => Promise<unknown> }> = {
      hyparquet: {
        rows: rowCount,
        file: files.ours,
        run: () => countRows(rowCount, (on) => readParquetBatches(files.ours, on)),
      },
      duckdbCountAvg: {
        rows: rowCount,
        file: files.ours,
        run: async () => {
          const [r] = await duckdbQuery(files.ours, "select count(*)::INTEGER as n, avg(abs) as a from t");
          if (r?.["n"] !== rowCount) throw new Error(`DuckDB counted ${String(r?.["n"])} rows, expected ${rowCount}`);
        },
      },
      duckdbFullScanInEngine: {
        rows: rowCount,
        file: files.ours,
        run: () =>
          duckdbQuery(
            files.ours,
            `select count(*) as n, sum(section), sum(block), sum(image), sum(abs), sum(scaled), sum(cosine), sum("inputNorm"), sum("outputNorm") from t`,
          ),
      },
      duckdbFullScanToJs: {
        rows: rowCount,
        file: files.ours,
        run: async () => {
          const { rows: n } = await duckdbScanToJs(files.ours);
          if (n !== rowCount) throw new Error(`DuckDB streamed ${n} rows, expected ${rowCount}`);
        },
      },
      parquetjsOwnFile: {
        rows: parquetjsRows,
        file: files.parquetjs,
        run: () => countRows(parquetjsRows, (on) => parquetjsReadBatches(files.parquetjs, on)),
      },
      hyparquetOnParquetjsFile: {
        rows: parquetjsRows,
        file: files.parquetjs,
        run: () => countRows(parquetjsRows, (on) => readParquetBatches(files.parquetjs, on)),
      },
    };
    const readSeconds = await interleaved(reads, repeats);

    /** Seconds per row of parquetjs-lite's write / read, per repeat: the baseline of every ratio. */
    const perRow = (secs: number[], n: number) => secs.map((s) => s / n);
    const parquetjsWritePerRow = perRow(writeSeconds["parquetjs"]!, parquetjsRows);
    const parquetjsReadPerRow = perRow(readSeconds["parquetjsOwnFile"]!, parquetjsRows);
    const throughput = (secs: number[], rowsDone: number, bytes: number, baseline?: number[]): Throughput => {
      const s = summarize(secs);
      return {
        rows: rowsDone,
        bytes,
        seconds: s,
        rowsPerSec: rowsDone / s.median,
        mbPerSec: bytes / 1e6 / s.median,
        ...(baseline === undefined
          ? {}
          : { speedupOverParquetjs: summarize(perRow(secs, rowsDone).map((x, i) => baseline[i]! / x)) }),
      };
    };
    const write = Object.fromEntries(
      Object.entries(writes).map(([name, w]) => {
        const bytes = w.file === undefined ? 0 : statSync(w.file).size;
        return [
          name,
          throughput(
            writeSeconds[name]!,
            w.rows,
            bytes,
            name === "parquetjs" || name === "generateOnly" ? undefined : parquetjsWritePerRow,
          ),
        ];
      }),
    );
    const read = Object.fromEntries(
      Object.entries(reads).map(([name, r]) => [
        name,
        throughput(
          readSeconds[name]!,
          r.rows,
          statSync(r.file).size,
          name === "parquetjsOwnFile" ? undefined : parquetjsReadPerRow,
        ),
      ]),
    );

    log("");
    log(`write (median of ${repeats}; x = times faster than parquetjs-lite per row, median of per-repeat ratios)`);
    printTable(log, write);
    log("");
    log(`read (median of ${repeats}; MB/s of the file read)`);
    printTable(log, read);
    log("");
    log(
      `file sizes (bytes): ${Object.entries(fileBytes)
        .map(
          ([k, b]) =>
            `${k} ${b} (${round(b / (k === "parquetjs" || k === "oursPrefix" ? parquetjsRows : rowCount), 3)} B/row)`,
        )
        .join(", ")}`,
    );

    // Checks, untimed.
    const checks: IoResult["checks"] = {
      hyparquetRoundTrip: await readCheck(readParquetBatches, files.ours, rows(), rowCount),
      duckdbReadsOurFile: await duckdbCheck(files.ours, rows(), rowCount),
      hyparquetReadsParquetjsFile: await readCheck(readParquetBatches, files.parquetjs, prefixRows(), parquetjsRows),
      parquetjsReadsOurFile: await readCheck(
        parquetjsReadBatches,
        onPrefix ? files.oursPrefix : files.ours,
        prefixRows(),
        parquetjsRows,
      ),
      deterministicBytes: await (async () => {
        if (repeats < 2) {
          // One timed write proves nothing: write each file once more.
          for (const [name, w] of Object.entries(writes)) {
            if (w.file === undefined) continue;
            await w.run();
            hashes[name]!.add(sha256(w.file));
          }
        }
        return Object.fromEntries(Object.entries(hashes).map(([name, set]) => [name, set.size === 1]));
      })(),
    };
    log(`checks: ${JSON.stringify(checks)}`);
    const loadEnd = loadavg();
    log(`load average at the end: ${loadEnd.map((l) => l.toFixed(2)).join(" ")}`);
    return { benchmark: "io", settings, loadavg: { start: loadStart, end: loadEnd }, fileBytes, write, read, checks };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs a row reader, counting rows (each batch is touched, as a consumer would); throws if the count is off. */
async function countRows(
  expected: number,
  read: (onBatch: (rows: ReadonlyArray<Row>) => Promise<void>) => Promise<number>,
): Promise<void> {
  let n = 0;
  await read(async (batch) => {
    n += batch.length;
  });
  if (n !== expected) throw new Error(`read ${n} rows, expected ${expected}`);
}

/** Seconds per run and name, runs interleaved, order alternating per repeat; `after` runs untimed after each. */
async function interleaved(
  runs: Record<string, { run: () => Promise<unknown> }>,
  repeats: number,
  after?: (name: string) => void,
): Promise<Record<string, number[]>> {
  const names = Object.keys(runs);
  const seconds: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let rep = 0; rep < repeats; rep++) {
    for (const name of rep % 2 === 0 ? names : [...names].reverse()) {
      seconds[name]!.push(await time(runs[name]!.run));
      after?.(name);
    }
  }
  return seconds;
}

function printTable(log: (line: string) => void, table: Record<string, Throughput>): void {
  log(
    `  ${"".padEnd(26)} ${"rows".padStart(9)} ${"s".padStart(8)} ${"rows/s".padStart(10)} ${"MB/s".padStart(7)} ${"x pqjs".padStart(7)}`,
  );
  for (const [name, t] of Object.entries(table)) {
    const ratio = t.speedupOverParquetjs === undefined ? "" : `${round(t.speedupOverParquetjs.median, 2)}`;
    log(
      `  ${name.padEnd(26)} ${String(t.rows).padStart(9)} ${round(t.seconds.median, 3).toString().padStart(8)} ` +
        `${Math.round(t.rowsPerSec).toString().padStart(10)} ${round(t.mbPerSec, 2).toString().padStart(7)} ${ratio.padStart(7)}`,
    );
  }
}

/** CLI: prints the table and writes benchmarks/results/io.json (io-quick.json with --quick). */
async function cli(argv: ReadonlyArray<string>): Promise<void> {
  const options = parseOptions(argv, ["quick", "blocks", "images", "repeats", "parquetjs-rows", "out", "results-dir"]);
  const quick = options.has("quick");
  const blocks = countOption(options, "blocks");
  const images = countOption(options, "images");
  const repeats = countOption(options, "repeats");
  const parquetjsRows = countOption(options, "parquetjs-rows");
  const result = await runIoBenchmark({
    quick,
    ...(blocks === undefined ? {} : { blocks }),
    ...(images === undefined ? {} : { images }),
    ...(repeats === undefined ? {} : { repeats }),
    ...(parquetjsRows === undefined ? {} : { parquetjsRows }),
  });
  const out = writeResults(options.get("out") ?? (quick ? "io-quick" : "io"), result, options.get("results-dir"));
  process.stdout.write(`wrote ${path.relative(process.cwd(), out)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await cli(process.argv.slice(2));
}
