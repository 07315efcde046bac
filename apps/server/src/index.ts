export { RepoServer, loadConfig, type ServerOptions, type RepoMount, type AccessLogEntry } from "./server.js";
export { SummaryKeeper } from "./summary-keeper.js";
