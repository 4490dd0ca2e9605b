/** Services the paper's stages need beyond StageIO, as Effect tags, so tests can swap them. */
import { Context, Effect, Layer } from "effect";
import { errorMessage, StageError } from "../pipeline/stage.ts";
import { selectBackend, tensorFlowReadsAsTrue, type BackendInfo } from "../science/backend/select.ts";

/** Where the raw distribution files live, and whether they may be downloaded when missing. */
export class DataSource extends Context.Tag("paper/DataSource")<
  DataSource,
  { readonly dataDir: string; readonly online: boolean }
>() {}

/** The TensorFlow.js backend, chosen once per run and only when a stage first asks for it. */
export class Backend extends Context.Tag("paper/Backend")<
  Backend,
  { readonly get: Effect.Effect<BackendInfo, StageError> }
>() {}

/** Builds the lazy, memoised backend service for `--backend CHOICE`; `verbose` shows TensorFlow's C++ logs. */
export const backendLayer = (choice: string, options: { readonly verbose?: boolean } = {}) =>
  Layer.effect(
    Backend,
    Effect.map(
      Effect.cached(
        Effect.tryPromise({
          try: () => selectBackend(choice, options),
          catch: (e) => new StageError({ message: errorMessage(e) }),
        }),
      ),
      (get) => ({ get }),
    ),
  );

/** What goes into every manifest of a stage that used the backend. */
export const backendRecord = (b: BackendInfo) => ({
  name: b.name,
  tensorflow: b.tfVersion,
  tfjs: b.tfjsVersion,
  threads: b.threads,
  deterministic: b.deterministic,
  env: b.env,
});

/**
 * One line saying which backend runs and the settings its results depend on bitwise, e.g.
 * `backend tensorflow (TensorFlow 2.21.0, 2 intra-op / 1 inter-op threads, deterministic ops, oneDNN on)`.
 * It is where a run states them, since TensorFlow's own log lines are silenced by default.
 */
export const describeBackend = (b: BackendInfo) => {
  const settings = [
    b.name === "cpu" ? `tfjs ${b.tfjsVersion}, pure JS` : `TensorFlow ${b.tfVersion}`,
    `${b.threads.intraOp} intra-op / ${b.threads.interOp} inter-op threads`,
    ...(b.deterministic ? ["deterministic ops"] : []),
    ...(b.name === "cpu" ? [] : [`oneDNN ${tensorFlowReadsAsTrue(b.env["TF_ENABLE_ONEDNN_OPTS"]) ? "on" : "off"}`]),
  ];
  return `backend ${b.name} (${settings.join(", ")})`;
};
