// The undici modules HttpClient uses, imported by path: undici's index also
// loads fetch, WebSocket, caches and mocks (twice the code to compile at
// start-up). Typed from undici's own declarations.
declare module "undici/lib/dispatcher/agent.js" {
  const Agent: typeof import("undici").Agent;
  export default Agent;
}
declare module "undici/lib/dispatcher/proxy-agent.js" {
  const ProxyAgent: typeof import("undici").ProxyAgent;
  export default ProxyAgent;
}
declare module "undici/lib/core/errors.js" {
  const errors: typeof import("undici").errors;
  export default errors;
}
declare module "undici/lib/dispatcher/dispatcher.js" {
  const Dispatcher: typeof import("undici").Dispatcher;
  export default Dispatcher;
}
declare module "undici/lib/api/index.js" {
  /** request, stream, pipeline, upgrade, connect: the methods undici's index puts on Dispatcher.prototype. */
  const api: Record<string, unknown>;
  export default api;
}
