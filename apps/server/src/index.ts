export { RepoServer, type ServerOptions, type RepoMount, type AccessLogEntry, type ServerEvent } from "./server.js";
export { loadConfig, ConfigError } from "./config.js";
export { SummaryKeeper, type SummarySnapshot } from "./summary-keeper.js";
export { SummarySigner, SigningConfigError, type SigningConfig } from "./signer.js";
export { DeltaWorker, type DeltaConfig } from "./delta-worker.js";
