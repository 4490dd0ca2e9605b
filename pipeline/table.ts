/**
 * Tables: a table artifact is declared once, as an Effect Schema of its row, in the module that computes it; its
 * Parquet columns are derived from that Schema.
 *
 * A row Schema is a `Schema.Struct` whose fields are the column types below (or `Schema.NullOr` of one, a nullable
 * column); nothing else. Each column type's decoded value is exactly what the Parquet reader gives for its physical
 * type, so a file whose columns (names, order, types, nullability) equal the declared ones holds valid rows: reads
 * check the file's schema once, not every value. Imports nothing but effect, so science/ can declare its rows here.
 */
import { Schema, SchemaAST } from "effect";

/** Parquet physical column types the engine's table writer supports. */
export type ColumnType = "INT32" | "INT64" | "DOUBLE" | "BOOLEAN" | "UTF8" | "BYTE_ARRAY";

export interface ColumnSpec {
  readonly type: ColumnType;
  /** A nullable column (null/undefined values allowed). */
  readonly optional?: boolean;
}

/** A table's columns by name, in file order. */
export type Columns = Readonly<Record<string, ColumnSpec>>;

/** One value of a table row, as pipeline/parquet.ts reads and writes it (INT64: number when exact, else bigint). */
export type Cell = number | string | boolean | bigint | Uint8Array | null | undefined;
export type Row = Readonly<Record<string, Cell>>;

const ColumnTypeId: unique symbol = Symbol.for("pipeline/table/ColumnType");

const columnType = (ast: SchemaAST.AST): ColumnType | undefined =>
  SchemaAST.getAnnotation<ColumnType>(ColumnTypeId)(ast).pipe((o) => (o._tag === "Some" ? o.value : undefined));

/** A 32-bit integer column. */
export const Int32 = Schema.Int.annotations({ [ColumnTypeId]: "INT32" });
/** A 64-bit integer column: a number when exact, a bigint beyond 2^53. */
export const Int64 = Schema.Union(Schema.Int, Schema.BigIntFromSelf).annotations({ [ColumnTypeId]: "INT64" });
/** A float64 column. */
export const Double = Schema.Number.annotations({ [ColumnTypeId]: "DOUBLE" });
export const Bool = Schema.Boolean.annotations({ [ColumnTypeId]: "BOOLEAN" });
/** A UTF-8 string column. */
export const Utf8 = Schema.String.annotations({ [ColumnTypeId]: "UTF8" });
/** A raw bytes column. */
export const Bytes = Schema.Uint8ArrayFromSelf.annotations({ [ColumnTypeId]: "BYTE_ARRAY" });

/** The column of one field: a column type, or `Schema.NullOr` of one (nullable). */
const columnOf = (name: string, ast: SchemaAST.AST): ColumnSpec => {
  const type = columnType(ast);
  if (type !== undefined) return { type };
  if (SchemaAST.isUnion(ast) && ast.types.length === 2) {
    const [a, b] = ast.types;
    const isNull = (t: SchemaAST.AST | undefined) => t !== undefined && SchemaAST.isLiteral(t) && t.literal === null;
    const inner = isNull(b) ? a : isNull(a) ? b : undefined;
    const innerType = inner === undefined ? undefined : columnType(inner);
    if (innerType !== undefined) return { type: innerType, optional: true };
  }
  throw new Error(`column "${name}": a column must be Int32, Int64, Double, Bool, Utf8, Bytes or Schema.NullOr of one`);
};

/** The Parquet columns of a row Schema, in field order. */
export const columnsOf = (row: { readonly fields: Schema.Struct.Fields }): Columns =>
  Object.fromEntries(
    Object.entries(row.fields).map(([name, field]) => {
      if (!Schema.isSchema(field)) throw new Error(`column "${name}": optional fields are not columns, use NullOr`);
      return [name, columnOf(name, field.ast)];
    }),
  );

/** Type only: the row type a table's columns were derived from. */
declare const RowType: unique symbol;

/** A Parquet table artifact with a fixed schema. */
export interface TableOutput<A = Row> {
  readonly kind: "table";
  readonly columns: Columns;
  readonly description: string;
  /**
   * Bytes that legitimately differ between identical runs (wall times). A volatile artifact is cached like any
   * other but left out of downstream keys and replay comparisons, so it never invalidates anything.
   */
  readonly volatile?: boolean;
  readonly [RowType]?: A;
}

/** The row type of a table declaration. */
export type RowOf<T> = T extends TableOutput<infer A> ? A : never;

/** A table output whose columns are derived from its row Schema. */
export const table = <F extends Schema.Struct.Fields>(
  description: string,
  row: Schema.Struct<F>,
): TableOutput<Schema.Struct.Type<F>> => ({
  kind: "table",
  columns: columnsOf(row),
  description,
});

/** A table output holding wall times or other bytes that differ between identical runs (see TableOutput.volatile). */
export const volatileTable = <F extends Schema.Struct.Fields>(
  description: string,
  row: Schema.Struct<F>,
): TableOutput<Schema.Struct.Type<F>> => ({ ...table(description, row), volatile: true });

/** A column as a file has it: its physical type name (UTF8 for UTF-8 strings) and nullability. */
export interface FileColumn {
  readonly name: string;
  readonly type: string;
  readonly optional: boolean;
}

/** `name TYPE`, with `?` for a nullable column: how a column reads in messages and replay diffs. */
export const describeColumn = (column: FileColumn): string => `${column.name} ${columnTypeText(column)}`;

const columnTypeText = (column: FileColumn): string => `${column.type}${column.optional ? "?" : ""}`;

/** Why a file's columns do not hold the declared rows, naming the first column that differs; undefined when equal. */
export const columnMismatch = (found: ReadonlyArray<FileColumn>, declared: Columns): string | undefined => {
  const expected = Object.entries(declared).map(([name, c]) => ({ name, type: c.type, optional: c.optional === true }));
  for (let i = 0; i < Math.max(found.length, expected.length); i++) {
    const [f, e] = [found[i], expected[i]];
    if (e === undefined) return `the file has an undeclared column "${f!.name}"`;
    if (f === undefined) return `column "${e.name}" is missing`;
    if (f.name !== e.name) return `column "${e.name}" is missing (the file has "${f.name}" there)`;
    if (columnTypeText(f) !== columnTypeText(e)) {
      return `column "${e.name}" is declared ${columnTypeText(e)} but the file has ${columnTypeText(f)}`;
    }
  }
  return undefined;
};
