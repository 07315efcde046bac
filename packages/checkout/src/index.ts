export * from "./errors.js";
export * from "./devino.js";
export { checkout, type CheckoutOptions, type CheckoutStats, type FilterInfo, type OverwriteMode } from "./checkout.js";
export { lookupPath, lookupPathFollowingLinks, probeFile, resolveCommit, resolveSubpath, SubpathNotFoundError, validateName, type ProbedFile, type Resolved } from "./tree.js";
export { checksumPath } from "./fsutil.js";
export * from "./walk.js";
export * from "./diff.js";
