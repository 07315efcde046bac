export * from "./errors.js";
export * from "./remotes.js";
export * from "./cookies.js";
export * from "./http.js";
export * from "./summary.js";
export * from "./source.js";
export * from "./progress.js";
export * from "./pull.js";
