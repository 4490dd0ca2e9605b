/**
 * `pipeline setup-backend [--from-wheel PATH|--pip] [--gpu] [--force]`: builds the native TensorFlow.js binding
 * offline.
 */
import { parseArgs } from "node:util";
import type { PipelineCommand } from "../pipeline/definition.ts";
import { errorMessage } from "../pipeline/stage.ts";

export const setupBackendCommand: PipelineCommand = {
  description:
    "build the native TensorFlow backend from a TensorFlow wheel [--from-wheel PATH|--pip] [--gpu] [--force]",
  usage: "setup-backend",
  run: async (args) => {
    let values;
    try {
      ({ values } = parseArgs({
        args: [...args],
        options: {
          "from-wheel": { type: "string" },
          pip: { type: "boolean" },
          gpu: { type: "boolean" },
          force: { type: "boolean" },
        },
        strict: true,
      }));
    } catch (e) {
      process.stderr.write(`pipeline setup-backend: ${errorMessage(e).split("\n")[0]}\n`);
      return 2;
    }
    if (values["from-wheel"] !== undefined && values.pip === true) {
      process.stderr.write("pipeline setup-backend: give either --from-wheel PATH or --pip, not both\n");
      return 2;
    }
    const { setupBackend, BackendSetupError } = await import("../science/backend/setup.ts");
    try {
      const result = await setupBackend({
        ...(values["from-wheel"] === undefined ? {} : { fromWheel: values["from-wheel"] }),
        pip: values.pip === true || values["from-wheel"] === undefined,
        gpu: values.gpu === true,
        force: values.force === true,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      process.stderr.write(
        `${result.packageName}: TensorFlow ${result.tfVersion} ${result.alreadyBuilt ? "already built" : `built in ${result.seconds.toFixed(0)} s`} (${result.bindingPath})\n`,
      );
      return 0;
    } catch (e) {
      if (e instanceof BackendSetupError) {
        process.stderr.write(`pipeline setup-backend: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
  },
};
