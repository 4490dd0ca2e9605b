/**
 * Tables declared as row Schemas: the Parquet columns derived from them, and reads checked against the declaration
 * (a cached artifact whose columns no longer match what its stage declares fails in one line, naming the column).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Schema } from "effect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { main } from "../pipeline/cli.ts";
import { Bool, Bytes, columnMismatch, columnsOf, Double, Int32, Int64, table, Utf8 } from "../pipeline/table.ts";
import { capture } from "./fixtures/capture.ts";
import { fakePipeline, power, source, total } from "./fixtures/fake-pipeline.ts";

describe("row schemas", () => {
  it("give the Parquet columns in field order, nullable where the field is Schema.NullOr", () => {
    const row = Schema.Struct({
      name: Utf8,
      count: Int32,
      bytes: Int64,
      mean: Schema.NullOr(Double),
      ok: Bool,
      raw: Schema.NullOr(Bytes),
    });
    expect(Object.entries(columnsOf(row))).toEqual([
      ["name", { type: "UTF8" }],
      ["count", { type: "INT32" }],
      ["bytes", { type: "INT64" }],
      ["mean", { type: "DOUBLE", optional: true }],
      ["ok", { type: "BOOLEAN" }],
      ["raw", { type: "BYTE_ARRAY", optional: true }],
    ]);
  });

  it("refuse a field that is not a column type", () => {
    expect(() => columnsOf(Schema.Struct({ n: Schema.Number }))).toThrow(/column "n": a column must be/);
    const optional = Schema.Struct({ n: Schema.optional(Double) });
    expect(() => columnsOf(optional)).toThrow(/column "n": optional fields are not columns/);
    expect(() => columnsOf(Schema.Struct({ n: Schema.Union(Int32, Utf8) }))).toThrow(/column "n"/);
  });

  it("name the first column a file has differently", () => {
    const declared = table("t", Schema.Struct({ i: Int32, x: Schema.NullOr(Double) })).columns;
    const i = { name: "i", type: "INT32", optional: false };
    expect(columnMismatch([i, { name: "x", type: "DOUBLE", optional: true }], declared)).toBeUndefined();
    expect(columnMismatch([i, { name: "x", type: "DOUBLE", optional: false }], declared)).toBe(
      'column "x" is declared DOUBLE? but the file has DOUBLE',
    );
    expect(columnMismatch([i], declared)).toBe('column "x" is missing');
    expect(columnMismatch([i, { name: "y", type: "DOUBLE", optional: true }], declared)).toBe(
      'column "x" is missing (the file has "y" there)',
    );
    expect(columnMismatch([i, { name: "x", type: "DOUBLE", optional: true }, i], declared)).toBe(
      'the file has an undeclared column "i"',
    );
  });
});

describe("reading an upstream table", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "table-"));
    writeFileSync(join(dir, "a.txt"), "1 2 3");
    writeFileSync(join(dir, "b.txt"), "4");
    writeFileSync(join(dir, "behaviour.json"), JSON.stringify({ failOn: [], sleepMs: 0 }));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("fails in one line naming input, artifact and column when the file does not match the declaration", async () => {
    const run = async (pipeline: ReturnType<typeof fakePipeline>, ...args: string[]) => {
      const err = capture();
      const code = await main(pipeline, ["run", "power", "--cache-dir", join(dir, "cache"), ...args], {
        out: capture().stream,
        err: err.stream,
      });
      return { code, err: err.text() };
    };
    expect((await run(fakePipeline(dir))).code).toBe(0);
    // `source` now declares x as INT64 without a version bump: its cached artifacts (x DOUBLE) are reused.
    const redeclared = { ...source, outputs: { numbers: table("numbers", Schema.Struct({ i: Int32, x: Int64 })) } };
    const r = await run({ ...fakePipeline(dir), stages: [redeclared, power, total] }, "--force", "power");
    expect(r.code).toBe(1);
    const message = 'input numbers (source[a]) table "numbers": column "x" is declared INT64 but the file has DOUBLE';
    expect(r.err).toMatch(/FAILED\s+power\[a\]: input numbers/);
    expect(r.err).toContain(`power[a]: ${message}\n`);
  });
});
