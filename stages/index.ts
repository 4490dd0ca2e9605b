/**
 * The paper's pipeline: stage registration, configuration, CLI flags and the services the stages need.
 * Adding a stage: write stages/<name>.ts with defineStage, then list it in STAGES below.
 */
import { Layer } from "effect";
import { ConfigError } from "../pipeline/config.ts";
import type { PipelineDefinition } from "../pipeline/definition.ts";
import type { AnyStage } from "../pipeline/stage.ts";
import { DEFAULT_CONFIG, PaperConfig, PRESETS } from "./config.ts";
import { aggregate } from "./aggregate.ts";
import { download } from "./download.ts";
import { fit } from "./fit.ts";
import { preprocess } from "./preprocess.ts";
import { probe } from "./probe.ts";
import { report } from "./report.ts";
import { backendLayer, type Backend, DataSource } from "./services.ts";
import { setupBackendCommand } from "./setup-backend-command.ts";
import { stopRule } from "./stop-rule.ts";
import { train } from "./train.ts";

type Services = DataSource | Backend;

const STAGES: ReadonlyArray<AnyStage<PaperConfig, Services>> = [
  download,
  preprocess,
  train,
  probe,
  aggregate,
  fit,
  stopRule,
  report,
];

const DATASET_CHOICES = ["mnist", "cifar10", "all"];

/** A switch's value: "true" when given on the command line, or what its environment variable says. */
const flagIsOn = (value: string | undefined) => ["1", "true", "yes"].includes((value ?? "").toLowerCase());

export const paperPipeline: PipelineDefinition<PaperConfig, Services> = {
  name: "resnet-perturbation-pipeline",
  version: "1",
  stages: STAGES,
  config: PaperConfig,
  defaultConfig: DEFAULT_CONFIG,
  presets: PRESETS,
  options: [
    { name: "dataset", description: "mnist, cifar10 or all (default: the configuration's data sets)" },
    {
      name: "data-dir",
      description: "where the raw MNIST/CIFAR-10 files are (default ./data)",
      env: "PIPELINE_DATA_DIR",
    },
    {
      name: "backend",
      description: "auto, tensorflow-gpu, tensorflow or cpu (pure JS: only for tiny tests)",
      env: "PIPELINE_BACKEND",
    },
    {
      name: "offline",
      description: "never download; missing files stop with a message",
      env: "PIPELINE_OFFLINE",
      boolean: true,
    },
    {
      name: "verbose",
      description: "also show TensorFlow's own INFO/WARNING log lines",
      env: "PIPELINE_VERBOSE",
      boolean: true,
    },
  ],
  commands: { "setup-backend": setupBackendCommand },
  usesGpu: (options) => !["tensorflow", "cpu"].includes(options.backend ?? "auto"),
  configure: (encoded, options) => {
    const dataset = options.dataset;
    if (dataset === undefined) return encoded;
    if (!DATASET_CHOICES.includes(dataset)) {
      throw new ConfigError({ message: `--dataset must be one of ${DATASET_CHOICES.join(", ")}, got "${dataset}"` });
    }
    return { ...encoded, datasets: dataset === "all" ? ["mnist", "cifar10"] : [dataset] };
  },
  layer: (options) =>
    Layer.merge(
      Layer.succeed(DataSource, {
        dataDir: options["data-dir"] ?? "./data",
        online: !flagIsOn(options.offline),
      }),
      backendLayer(options.backend ?? "auto", { verbose: flagIsOn(options.verbose) }),
    ),
};
