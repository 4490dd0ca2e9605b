/**
 * Artifact I/O of a probe-shaped table (stages/probe.ts's columns: section, block, image INT32; abs, scaled?,
 * cosine?, inputNorm, outputNorm DOUBLE) at L = 100 x 3 sections x 10,000 images = 3 million rows:
 *  - write: pipeline/parquet.ts writeParquet (parquetjs-lite) vs DuckDB fed the same JS rows (appender per value,
 *    appender by data chunks) vs DuckDB generating the table itself (COPY, no JS values: an upper bound);
 *  - read: pipeline/parquet.ts readParquetBatches (every row as a JS object) vs DuckDB on the same file:
 *    `select count(*), avg(abs)`, an in-engine full scan (a sum over every column), and every value streamed into JS.
 * Runs interleave (alternating order per repeat); throughput is MB/s of the file and rows/s, ratios are per repeat.
 * Also checked: DuckDB's file reads back through parquetjs-lite with the same rows (the pipeline's reader), and two
 * DuckDB writes of the same rows give the same bytes (artifact keys hash bytes).
 *
 *   npx tsx benchmarks/io.ts [--quick] [--blocks 100] [--images 10000] [--repeats 3] [--out io] [--results-dir DIR]
 * `--quick`: 4 blocks x 1,000 images (12,000 rows), 2 repeats. Writes benchmarks/results/<out>.json.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import * as path from "node:path";
import { readParquet, readParquetBatches, writeParquet } from "../pipeline/parquet.ts";
import { duckdbQuery, duckdbScanToJs, duckdbWriteGenerated, duckdbWriteParquet } from "./lib/ml-duckdb-io.ts";
import { parseOptions, round, summarize, writeResults, type Summary } from "./lib/ml-measure.ts";
import { PROBE_TABLE, syntheticProbeRows } from "./lib/ml-probe-rows.ts";

const options = parseOptions(process.argv.slice(2), ["quick", "blocks", "images", "repeats", "out", "results-dir"]);
const quick = options.has("quick");
const settings = {
  quick,
  blocks: Number(options.get("blocks") ?? (quick ? 4 : 100)),
  images: Number(options.get("images") ?? (quick ? 1000 : 10_000)),
  repeats: Number(options.get("repeats") ?? (quick ? 2 : 3)),
};
const resultsDir = options.get("results-dir");
const rowCount = 3 * settings.blocks * settings.images;
const rows = () => syntheticProbeRows(settings.blocks, settings.images);

const dir = mkdtempSync(path.join(tmpdir(), "bench-io-"));
const files = {
  parquetjs: path.join(dir, "parquetjs.parquet"),
  duckRows: path.join(dir, "duck-rows.parquet"),
  duckChunks: path.join(dir, "duck-chunks.parquet"),
  duckEngine: path.join(dir, "duck-engine.parquet"),
};

const time = async (f: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
};

/** Seconds to only generate the rows in JS (a floor under every JS-fed writer). */
const generateOnly = () =>
  time(async () => {
    let n = 0;
    for (const _ of rows()) n++;
    if (n !== rowCount) throw new Error(`generated ${n} rows, expected ${rowCount}`);
  });

const writes: Record<string, () => Promise<unknown>> = {
  generateOnly,
  parquetjs: () => writeParquet(files.parquetjs, PROBE_TABLE, rows()),
  duckdbAppenderRows: () => duckdbWriteParquet(files.duckRows, PROBE_TABLE, rows(), "appender-rows"),
  duckdbAppenderChunks: () => duckdbWriteParquet(files.duckChunks, PROBE_TABLE, rows(), "appender-chunks"),
  duckdbEngine: () => duckdbWriteGenerated(files.duckEngine, settings.blocks, settings.images),
};

let parquetjsReadRows = 0;
const reads: Record<string, () => Promise<unknown>> = {
  parquetjsFullScan: () =>
    readParquetBatches(files.parquetjs, async (batch) => {
      parquetjsReadRows += batch.length;
    }),
  duckdbCountAvg: () => duckdbQuery(files.parquetjs, "select count(*) as n, avg(abs) as a from t"),
  duckdbFullScanInEngine: () =>
    duckdbQuery(
      files.parquetjs,
      `select count(*) as n, sum(section), sum(block), sum(image), sum(abs), sum(scaled), sum(cosine), sum("inputNorm"), sum("outputNorm") from t`,
    ),
  duckdbFullScanToJs: () => duckdbScanToJs(files.parquetjs),
};

async function interleaved(runs: Record<string, () => Promise<unknown>>): Promise<Record<string, number[]>> {
  const names = Object.keys(runs);
  const seconds: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let rep = 0; rep < settings.repeats; rep++) {
    for (const name of rep % 2 === 0 ? names : [...names].reverse()) seconds[name]!.push(await time(runs[name]!));
  }
  return seconds;
}

interface Throughput {
  seconds: Summary;
  rowsPerSec: number;
  /** File MB (10^6 bytes) per second; for reads, of the file read. */
  mbPerSec: number;
  /** Per repeat: parquetjs-lite's time / this one's (how many times faster than parquetjs-lite). */
  speedupOverParquetjs?: Summary;
}

const throughput = (secs: number[], bytes: number, baseline?: number[]): Throughput => {
  const s = summarize(secs);
  const t: Throughput = { seconds: s, rowsPerSec: rowCount / s.median, mbPerSec: bytes / 1e6 / s.median };
  if (baseline !== undefined) t.speedupOverParquetjs = summarize(secs.map((x, i) => baseline[i]! / x));
  return t;
};

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** The first `n` rows of two files read by parquetjs-lite agree (columns compared by name, nulls as null). */
async function sameRows(a: string, b: string, n: number): Promise<boolean> {
  const [ra, rb] = [await readParquet(a), await readParquet(b)];
  if (ra.length !== rb.length) return false;
  const names = Object.keys(PROBE_TABLE.columns);
  for (let i = 0; i < Math.min(n, ra.length); i++) {
    for (const c of names) if ((ra[i]![c] ?? null) !== (rb[i]![c] ?? null)) return false;
  }
  return true;
}

try {
  console.log(`io: ${rowCount} rows (L=${settings.blocks} x 3 sections x ${settings.images} images), ${settings.repeats} repeats`);
  const writeSeconds = await interleaved(writes);
  const sizes = Object.fromEntries(Object.entries(files).map(([k, f]) => [k, statSync(f).size]));
  const writeResultsTable = {
    generateOnly: throughput(writeSeconds["generateOnly"]!, 0),
    parquetjs: throughput(writeSeconds["parquetjs"]!, sizes["parquetjs"]!),
    duckdbAppenderRows: throughput(writeSeconds["duckdbAppenderRows"]!, sizes["duckRows"]!, writeSeconds["parquetjs"]),
    duckdbAppenderChunks: throughput(writeSeconds["duckdbAppenderChunks"]!, sizes["duckChunks"]!, writeSeconds["parquetjs"]),
    duckdbEngine: throughput(writeSeconds["duckdbEngine"]!, sizes["duckEngine"]!, writeSeconds["parquetjs"]),
  };
  for (const [name, t] of Object.entries(writeResultsTable)) {
    console.log(
      `write ${name}: ${round(t.seconds.median)} s, ${round(t.rowsPerSec)} rows/s, ${round(t.mbPerSec)} MB/s` +
        (t.speedupOverParquetjs ? `, x${round(t.speedupOverParquetjs.median)} vs parquetjs-lite` : ""),
    );
  }

  const readSeconds = await interleaved(reads);
  if (parquetjsReadRows !== rowCount * settings.repeats) throw new Error(`parquetjs-lite read ${parquetjsReadRows} rows`);
  const pqBytes = sizes["parquetjs"]!;
  const readBase = readSeconds["parquetjsFullScan"]!;
  const readResultsTable = Object.fromEntries(
    Object.entries(readSeconds).map(([name, secs]) => [name, throughput(secs, pqBytes, name === "parquetjsFullScan" ? undefined : readBase)]),
  );
  for (const [name, t] of Object.entries(readResultsTable)) {
    console.log(
      `read ${name}: ${round(t.seconds.median)} s, ${round(t.rowsPerSec)} rows/s, ${round(t.mbPerSec)} MB/s` +
        (t.speedupOverParquetjs ? `, x${round(t.speedupOverParquetjs.median)} vs parquetjs-lite` : ""),
    );
  }

  const [count] = await duckdbQuery(files.parquetjs, "select count(*)::INTEGER as n, avg(abs) as a from t");
  const [countDuck] = await duckdbQuery(files.duckChunks, "select count(*)::INTEGER as n, avg(abs) as a from t");
  const checks = {
    duckdbCountMatches: count?.["n"] === rowCount && countDuck?.["n"] === rowCount,
    // Same values, but DuckDB's parallel sum adds them in an order that depends on the files' row groups.
    avgAbsAgrees: Math.abs((count?.["a"] as number) - (countDuck?.["a"] as number)) <= 1e-12 * Math.abs(count?.["a"] as number),
    duckdbWritesDeterministic: await (async () => {
      const again = path.join(dir, "duck-chunks-again.parquet");
      await duckdbWriteParquet(again, PROBE_TABLE, rows(), "appender-chunks");
      return sha256(again) === sha256(files.duckChunks);
    })(),
    // Reading 3M rows as objects twice needs GBs; the reader check uses the rows of a smaller table.
    parquetjsReadsDuckdbFile: await (async () => {
      const small = (f: string) => path.join(dir, `small-${f}.parquet`);
      const smallRows = () => syntheticProbeRows(2, 1000);
      await writeParquet(small("pq"), PROBE_TABLE, smallRows());
      await duckdbWriteParquet(small("duck"), PROBE_TABLE, smallRows(), "appender-chunks");
      return sameRows(small("pq"), small("duck"), 6000);
    })(),
  };
  console.log(`checks: ${JSON.stringify(checks)}`);
  console.log(`file sizes (bytes): ${JSON.stringify(sizes)}`);
  const out = writeResults(options.get("out") ?? "io", {
    benchmark: "io",
    settings: { ...settings, rows: rowCount },
    loadavg: loadavg(),
    fileBytes: sizes,
    write: writeResultsTable,
    read: readResultsTable,
    checks,
  }, resultsDir);
  console.log(`wrote ${out}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
