/**
 * A pipeline definition: the stages, the configuration they expand under, and the services they need.
 * The engine and CLI are generic over it; `stages/index.ts` provides the paper's.
 */
import type { Layer, Schema } from "effect";
import type { AnyStage } from "./stage.ts";

/** An extra CLI flag that a pipeline definition adds to `run`, `status`, `dag` and `gc` (e.g. `--dataset`). */
export interface PipelineOption {
  readonly name: string;
  readonly description: string;
  /** Environment variable consulted when the flag is absent. */
  readonly env?: string;
  /** A switch without a value (`--offline`); its value is then "true". */
  readonly boolean?: boolean;
}

export type OptionValues = Readonly<Record<string, string | undefined>>;

/** A subcommand that a pipeline definition adds to the CLI (e.g. `setup-backend`). */
export interface PipelineCommand {
  readonly description: string;
  readonly usage: string;
  /** Returns the process exit code. */
  readonly run: (args: ReadonlyArray<string>) => Promise<number>;
}

export interface PipelineDefinition<C, R> {
  readonly name: string;
  readonly version: string;
  readonly stages: ReadonlyArray<AnyStage<C, R>>;
  // `any` erases the encoded type, which Schema holds invariantly: a pipeline's own config schema must fit here.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly config: Schema.Schema<C, any, never>;
  /** The encoded default configuration. */
  readonly defaultConfig: Readonly<Record<string, unknown>>;
  /** Named partial configurations deep-merged over the defaults (`--preset NAME`). */
  readonly presets: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly defaultPreset?: string;
  readonly options: ReadonlyArray<PipelineOption>;
  /** Folds the definition's own flags into the encoded configuration (e.g. `--dataset mnist`). */
  readonly configure: (encoded: Record<string, unknown>, options: OptionValues) => Record<string, unknown>;
  /** Services the stages need; built lazily per run from the flags. */
  readonly layer: (options: OptionValues) => Layer.Layer<R>;
  readonly commands?: Readonly<Record<string, PipelineCommand>>;
  /**
   * Whether the stages declared "gpu" will use a GPU under these flags (not when a flag picks a CPU backend); absent:
   * they will. A batch job asks for a GPU only then, or it would wait forever on a cluster without one.
   */
  readonly usesGpu?: (options: OptionValues) => boolean;
}
