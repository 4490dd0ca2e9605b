/**
 * Whole-process entry for the benchmark definitions, like test/fixtures/fake-cli.ts:
 *   node --import tsx benchmarks/lib/bench-cli.ts paper|layered <pipeline CLI arguments>
 * Each definition is imported only when asked for, so `layered` loads the engine without the paper's stages.
 */
import { main } from "../../pipeline/cli.ts";

const [which, ...argv] = process.argv.slice(2);
if (which === "paper") {
  const { paperShapedPipeline } = await import("./paper-shaped.ts");
  process.exitCode = await main(paperShapedPipeline, argv);
} else if (which === "layered") {
  const { layeredPipeline } = await import("./trivial-stages.ts");
  process.exitCode = await main(layeredPipeline, argv);
} else {
  process.stderr.write("usage: bench-cli.ts paper|layered <pipeline arguments>\n");
  process.exitCode = 2;
}
