/**
 * Statistics of the paper for the aggregate, fit and stop-rule stages: pure functions over plain rows.
 *  - stats: streaming moments, OLS, Student t, tolerant ceiling
 *  - aggregate: probe rows -> per-block moments, per-section distances, network totals, across-seed summaries
 *  - fit: power-law fit of the mean scaled perturbation against depth, d_scaled estimators, saturation of d
 *  - stopRule: predicted and empirical depths beside the paper's numbers
 */
export * from "./analysis/stats.ts";
export * from "./analysis/aggregate.ts";
export * from "./analysis/fit.ts";
export * from "./analysis/stopRule.ts";
