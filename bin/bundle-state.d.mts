/** Whether dist/pipeline.mjs may run in place of the sources (see bundle-state.mjs). */
export type BundleState = "current" | "stale" | "absent";

/** `root` is the checkout's URL, ending in "/". */
export declare const bundleState: (root: URL) => Promise<BundleState>;
