#!/usr/bin/env node
// Entry point of `npx pipeline`: loads the TypeScript sources through tsx (no build step) and runs the CLI.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../pipeline/cli.ts");
const { paperPipeline } = await import("../stages/index.ts");
process.exitCode = await main(paperPipeline, process.argv.slice(2));
