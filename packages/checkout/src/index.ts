export * from "./errors.js";
export * from "./devino.js";
export * from "./checkout.js";
export { lookupPath, lookupPathFollowingLinks, probeFile, resolveCommit, resolveSubpath, SubpathNotFoundError, validateName, type ProbedFile, type Resolved } from "./tree.js";
export { checksumPath } from "./fsutil.js";
export * from "./walk.js";
export * from "./diff.js";
