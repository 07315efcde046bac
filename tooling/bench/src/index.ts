export * from "./stats.js";
export * from "./measure.js";
export * from "./inputs.js";
export * from "./ops.js";
export * from "./lower.js";
export * from "./harness.js";
export * from "./report.js";
