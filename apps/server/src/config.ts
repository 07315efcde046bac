import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { DeltaConfig } from "./delta-worker.js";
import type { AccessLogEntry, RepoMount, ServerEvent, ServerOptions } from "./server.js";
import type { SigningConfig } from "./signer.js";

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Unknown keys are errors: a typo would otherwise silently fall back to a default. */
function keysOnly(o: Obj, where: string, allowed: string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new ConfigError(`${where}: unknown key "${k}" (allowed: ${allowed.join(", ")})`);
}

function str(v: unknown, where: string): string {
  if (typeof v !== "string" || v === "") throw new ConfigError(`${where}: expected a non-empty string`);
  return v;
}

function num(v: unknown, where: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new ConfigError(`${where}: expected a non-negative number`);
  return v;
}

function bool(v: unknown, where: string): boolean {
  if (typeof v !== "boolean") throw new ConfigError(`${where}: expected true or false`);
  return v;
}

function strList(v: unknown, where: string): string[] {
  if (!Array.isArray(v)) throw new ConfigError(`${where}: expected a list of strings`);
  return v.map((x, i) => str(x, `${where}[${i}]`));
}

function signing(v: unknown, where: string, base: string): SigningConfig {
  if (!isObj(v)) throw new ConfigError(`${where}: expected an object`);
  keysOnly(v, where, ["gpg", "ed25519"]);
  const out: SigningConfig = {};
  if (v.gpg !== undefined) {
    if (!isObj(v.gpg)) throw new ConfigError(`${where}.gpg: expected an object`);
    keysOnly(v.gpg, `${where}.gpg`, ["keyIds", "homedir"]);
    out.gpg = { keyIds: strList(v.gpg.keyIds, `${where}.gpg.keyIds`) };
    if (v.gpg.homedir !== undefined) out.gpg.homedir = resolve(base, str(v.gpg.homedir, `${where}.gpg.homedir`));
  }
  if (v.ed25519 !== undefined) {
    if (!isObj(v.ed25519)) throw new ConfigError(`${where}.ed25519: expected an object`);
    keysOnly(v.ed25519, `${where}.ed25519`, ["secretKeys", "secretKeyFiles"]);
    out.ed25519 = {};
    if (v.ed25519.secretKeys !== undefined) out.ed25519.secretKeys = strList(v.ed25519.secretKeys, `${where}.ed25519.secretKeys`);
    if (v.ed25519.secretKeyFiles !== undefined) out.ed25519.secretKeyFiles = strList(v.ed25519.secretKeyFiles, `${where}.ed25519.secretKeyFiles`).map((f) => resolve(base, f));
  }
  return out;
}

function deltas(v: unknown, where: string): DeltaConfig {
  if (!isObj(v)) throw new ConfigError(`${where}: expected an object`);
  keysOnly(v, where, ["enabled", "fromParent", "fromDepth", "empty", "pruneAfterSeconds", "maxBsdiffSize", "minFallbackSize", "maxChunkSize"]);
  const out: DeltaConfig = {};
  for (const k of ["enabled", "fromParent", "empty"] as const) if (v[k] !== undefined) out[k] = bool(v[k], `${where}.${k}`);
  for (const k of ["maxBsdiffSize", "minFallbackSize", "maxChunkSize"] as const) if (v[k] !== undefined) out[k] = num(v[k], `${where}.${k}`);
  if (v.fromDepth !== undefined) {
    if (!Number.isInteger(v.fromDepth) || (v.fromDepth as number) < 0) throw new ConfigError(`${where}.fromDepth: expected a non-negative integer`);
    out.fromDepth = v.fromDepth as number;
  }
  if (v.pruneAfterSeconds !== undefined) {
    if (typeof v.pruneAfterSeconds !== "number" || !Number.isFinite(v.pruneAfterSeconds)) throw new ConfigError(`${where}.pruneAfterSeconds: expected a number (negative: never)`);
    out.pruneAfterSeconds = v.pruneAfterSeconds;
  }
  return out;
}

/** A log destination: "stdout", "stderr", "off", or a file path (appended to). */
function sink(v: unknown, where: string, base: string): ((line: string) => void) | null {
  const s = str(v, where);
  if (s === "off") return null;
  if (s === "stdout") return (l) => process.stdout.write(l);
  if (s === "stderr") return (l) => process.stderr.write(l);
  const stream = createWriteStream(resolve(base, s), { flags: "a" });
  return (l) => stream.write(l);
}

/**
 * Read the JSON config file (format and defaults in apps/server/README.md).
 * Relative paths are taken from the file's directory.
 */
export async function loadConfig(path: string): Promise<ServerOptions> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new ConfigError(`${path}: ${(e as Error).message}`);
  }
  if (!isObj(raw)) throw new ConfigError(`${path}: expected a JSON object`);
  const base = dirname(resolve(path));
  const where = (k: string) => `${path}: ${k}`;
  keysOnly(raw, path, ["host", "port", "tls", "repos", "updateSummary", "summaryPollMs", "shutdownGraceMs", "sign", "deltas", "log"]);

  const repos: RepoMount[] = [];
  if (Array.isArray(raw.repos)) {
    for (const [i, r] of raw.repos.entries()) {
      const w = where(`repos[${i}]`);
      if (!isObj(r)) throw new ConfigError(`${w}: expected an object`);
      keysOnly(r, w, ["name", "path", "sign", "deltas"]);
      const m: RepoMount = { name: r.name === undefined ? "" : String(r.name), path: resolve(base, str(r.path, `${w}.path`)) };
      if (r.sign !== undefined) m.sign = signing(r.sign, `${w}.sign`, base);
      if (r.deltas !== undefined) m.deltas = deltas(r.deltas, `${w}.deltas`);
      repos.push(m);
    }
  } else if (isObj(raw.repos)) {
    for (const [name, p] of Object.entries(raw.repos)) repos.push({ name, path: resolve(base, str(p, where(`repos.${name}`))) });
  } else if (raw.repos !== undefined) {
    throw new ConfigError(`${where("repos")}: expected {"name": "path"} or a list of {name, path}`);
  }
  for (const m of repos) if (!/^[A-Za-z0-9._-]*$/.test(m.name) || m.name === "." || m.name === "..") throw new ConfigError(`${where("repos")}: invalid prefix "${m.name}"`);
  if (repos.length > 1 && repos.some((m) => m.name === "")) throw new ConfigError(`${where("repos")}: with several repos every one needs a name (its URL prefix)`);

  const opts: ServerOptions = { repos };
  if (raw.host !== undefined) opts.host = str(raw.host, where("host"));
  if (raw.port !== undefined) opts.port = num(raw.port, where("port"));
  if (raw.tls !== undefined) {
    if (!isObj(raw.tls)) throw new ConfigError(`${where("tls")}: expected {"cert", "key"}`);
    keysOnly(raw.tls, where("tls"), ["cert", "key"]);
    const cert = resolve(base, str(raw.tls.cert, where("tls.cert")));
    const key = resolve(base, str(raw.tls.key, where("tls.key")));
    opts.tls = { cert: await readFile(cert, "utf8"), key: await readFile(key, "utf8") };
  }
  if (raw.updateSummary !== undefined) opts.updateSummary = bool(raw.updateSummary, where("updateSummary"));
  if (raw.summaryPollMs !== undefined) opts.summaryPollMs = num(raw.summaryPollMs, where("summaryPollMs"));
  if (raw.shutdownGraceMs !== undefined) opts.shutdownGraceMs = num(raw.shutdownGraceMs, where("shutdownGraceMs"));
  if (raw.sign !== undefined) opts.sign = signing(raw.sign, where("sign"), base);
  if (raw.deltas !== undefined) opts.deltas = deltas(raw.deltas, where("deltas"));
  if (raw.log !== undefined) {
    if (!isObj(raw.log)) throw new ConfigError(`${where("log")}: expected {"access", "events"}`);
    keysOnly(raw.log, where("log"), ["access", "events"]);
    if (raw.log.access !== undefined) {
      const out = sink(raw.log.access, where("log.access"), base);
      opts.log = out ? (e: AccessLogEntry) => out(`${JSON.stringify(e)}\n`) : null;
    }
    if (raw.log.events !== undefined) {
      const out = sink(raw.log.events, where("log.events"), base);
      opts.events = out ? (e: ServerEvent) => out(`${JSON.stringify(e)}\n`) : null;
    }
  }
  return opts;
}
