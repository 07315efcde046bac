import { parseArgs } from "node:util";
import { readFile } from "node:fs/promises";
import { ConfigError, loadConfig } from "./config.js";
import { RepoServer, type ServerOptions } from "./server.js";

const USAGE = `Usage: ostree-ts-server [--repo [NAME=]PATH]... [--host HOST] [--port PORT]
                        [--tls-cert FILE --tls-key FILE] [--config FILE] [--no-update-summary] [--quiet]
                        [--gpg-sign KEYID]... [--gpg-homedir DIR] [--sign-key-file FILE]...
                        [--deltas] [--deltas-empty] [--deltas-depth N]

Serves OSTree repositories read-only over HTTP/1.1 for \`ostree pull\`.
One --repo is served at /, several at /NAME/. Defaults: 127.0.0.1:8080.
--gpg-sign/--sign-key-file keep summary.sig signed (GPG key in a GnuPG home;
ed25519 secret keys, base64, one per line). --deltas makes static deltas from
each ref's parent in the background (--deltas-depth N: from each of the N
nearest ancestors; --deltas-empty: scratch deltas too).
Command-line options override the --config file (format: README.md).
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      repo: { type: "string", multiple: true },
      host: { type: "string" },
      port: { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      config: { type: "string" },
      "no-update-summary": { type: "boolean" },
      "summary-poll-ms": { type: "string" },
      quiet: { type: "boolean" },
      "gpg-sign": { type: "string", multiple: true },
      "gpg-homedir": { type: "string" },
      "sign-key-file": { type: "string", multiple: true },
      deltas: { type: "boolean" },
      "deltas-empty": { type: "boolean" },
      "deltas-depth": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const opts: ServerOptions = values.config ? await loadConfig(values.config) : { repos: [] };
  const repoArgs = values.repo ?? [];
  const mounts = repoArgs.map((r) => {
    const eq = r.indexOf("=");
    return eq > 0 ? { name: r.slice(0, eq), path: r.slice(eq + 1) } : { name: "", path: r };
  });
  if (mounts.length === 1 && !repoArgs[0]!.includes("=")) opts.repos = mounts;
  else if (mounts.length) opts.repos = mounts.map((m, i) => ({ name: m.name || `repo${i}`, path: m.path }));
  if (!opts.repos.length) {
    process.stderr.write(`${USAGE}\nerror: no repository given (--repo PATH)\n`);
    return 2;
  }
  if (values.host) opts.host = values.host;
  if (values.port) opts.port = Number(values.port);
  if (values["tls-cert"] && values["tls-key"]) opts.tls = { cert: await readFile(values["tls-cert"], "utf8"), key: await readFile(values["tls-key"], "utf8") };
  if (values["no-update-summary"]) opts.updateSummary = false;
  if (values["summary-poll-ms"]) opts.summaryPollMs = Number(values["summary-poll-ms"]);
  if (values.quiet) opts.log = null;
  if (values["gpg-sign"]?.length || values["sign-key-file"]?.length) {
    opts.sign = {};
    if (values["gpg-sign"]?.length) opts.sign.gpg = { keyIds: values["gpg-sign"], homedir: values["gpg-homedir"] };
    if (values["sign-key-file"]?.length) opts.sign.ed25519 = { secretKeyFiles: values["sign-key-file"] };
  }
  if (values.deltas || values["deltas-empty"] || values["deltas-depth"]) {
    opts.deltas = { ...opts.deltas, enabled: true, ...(values["deltas-empty"] ? { empty: true } : {}) };
    if (values["deltas-depth"]) {
      const n = Number(values["deltas-depth"]);
      if (!Number.isInteger(n) || n < 0) throw new ConfigError(`--deltas-depth: expected a non-negative integer, got ${values["deltas-depth"]}`);
      opts.deltas.fromDepth = n;
    }
  }
  const server = new RepoServer(opts);
  const port = await server.start();
  process.stderr.write(`${JSON.stringify({ event: "listening", host: opts.host ?? "127.0.0.1", port, repos: opts.repos })}\n`);
  await new Promise<void>((ok) => {
    const stop = (sig: string) => {
      process.stderr.write(`${JSON.stringify({ event: "shutdown", signal: sig })}\n`);
      server.stop().then(ok, ok);
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
