export * from "./errors.js";
export * from "./keyring.js";
export * from "./verify.js";
export * from "./gpg.js";
export * from "./remote-keys.js";
export * from "./signapi.js";
export { GPGSIGS_KEY, signaturesOf, withSignatures, decodeSummarySig } from "./detached.js";
