/** The TensorFlow.js backend: offline build of the native binding (setup) and run-time choice (select). */
export * from "./select.ts";
export * from "./setup.ts";
