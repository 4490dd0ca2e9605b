/** Typings for the parts of parquetjs-lite that benchmarks/lib/parquetjs-io.ts uses (the package ships none). */
declare module "parquetjs-lite" {
  export interface FieldDefinition {
    type: string;
    optional?: boolean;
  }
  export class ParquetSchema {
    constructor(fields: Record<string, FieldDefinition>);
  }
  export class ParquetWriter {
    static openFile(schema: ParquetSchema, path: string, opts?: Record<string, unknown>): Promise<ParquetWriter>;
    appendRow(row: Record<string, unknown>): Promise<void>;
    close(): Promise<void>;
  }
  export interface ParquetCursor {
    next(): Promise<Record<string, unknown> | null>;
  }
  export class ParquetReader {
    readonly schema: { fields: Record<string, unknown> };
    static openFile(path: string): Promise<ParquetReader>;
    getCursor(): ParquetCursor;
    close(): Promise<void>;
  }
  const parquet: {
    ParquetSchema: typeof ParquetSchema;
    ParquetWriter: typeof ParquetWriter;
    ParquetReader: typeof ParquetReader;
  };
  export default parquet;
}
