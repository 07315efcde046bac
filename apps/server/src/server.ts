import { createReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { join, resolve, sep } from "node:path";
import { SUMMARY_PAIR_HEADER } from "@ostree-ts/fetch";
import { ConfigError } from "./config.js";
import { DeltaWorker, type DeltaConfig } from "./delta-worker.js";
import { SummarySigner, type SigningConfig } from "./signer.js";
import { SummaryKeeper, type SummarySnapshot } from "./summary-keeper.js";

export interface RepoMount {
  /** URL prefix without slashes ("" = served at `/`). */
  name: string;
  path: string;
  /** Overrides the server-wide `sign` / `deltas` for this repo. */
  sign?: SigningConfig;
  deltas?: DeltaConfig;
}

/** Background work (summary updates, signing, delta generation) as one JSON object each. */
export type ServerEvent = Record<string, unknown> & { event: string };

export interface ServerOptions {
  repos: RepoMount[];
  host?: string;
  port?: number;
  tls?: { cert: string; key: string };
  /** Regenerate `summary` when refs change (default true); poll interval in ms (default 2000). */
  updateSummary?: boolean;
  summaryPollMs?: number;
  /** Keep `summary.sig` signed with these keys (needs `updateSummary`). */
  sign?: SigningConfig;
  /** Background static-delta generation (off unless `enabled`). */
  deltas?: DeltaConfig;
  /** One JSON object per request; default writes to stdout. `null` disables logging. */
  log?: ((entry: AccessLogEntry) => void) | null;
  /** How long `stop()` lets in-flight responses run before closing their sockets (default 10 s). */
  shutdownGraceMs?: number;
  /** Background events; default JSON lines on stderr. `null` disables them. */
  events?: ((e: ServerEvent) => void) | null;
}

export interface AccessLogEntry {
  time: string;
  remote: string;
  method: string;
  path: string;
  status: number;
  bytes: number;
  ms: number;
  range?: string;
  ua?: string;
}

/** What a repo serves: its archive files; everything else (tmp/, state/, .lock, …) is 404. */
const SERVABLE = /^(config|summary|summary\.sig|refs\/.+|objects\/[0-9a-f]{2}\/[0-9a-f]{62}\.(commit|commitmeta|dirtree|dirmeta|filez|sig)|deltas\/.+|delta-indexes\/.+)$/;
/** Content-addressed files never change once written. */
const IMMUTABLE = /^(objects\/|deltas\/)/;
/** How long a connection that fetched one file of the summary pair keeps getting the partner from that generation. */
const PAIR_PIN_MS = 10_000;

/** The generation a connection last took one file of the pair from (ostree fetches summary.sig, then summary, on one connection). */
interface PairPin {
  snap: SummarySnapshot;
  served: Set<string>;
  at: number;
}

/** What a response sends: a file on disk or bytes held in memory. */
type Body = { size: number; etag: string; mtimeMs: number; cacheControl: string } & ({ path: string } | { bytes: Uint8Array });

export class RepoServer {
  readonly server: Server;
  private readonly sockets = new Set<Socket>();
  readonly keepers = new Map<string, SummaryKeeper>();
  readonly deltaWorkers = new Map<string, DeltaWorker>();
  private readonly roots = new Map<string, string>();
  private readonly pins = new WeakMap<Socket, PairPin>();
  private closing = false;

  constructor(readonly options: ServerOptions) {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      const started = performance.now();
      this.handle(req, res)
        .catch((e) => {
          if (!res.headersSent) this.plain(res, 500, "internal error\n");
          else res.destroy(e as Error);
        })
        .finally(() => this.logRequest(req, res, started));
    };
    this.server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler) : createHttpServer(handler);
    this.server.keepAliveTimeout = 30_000;
    this.server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
  }

  /** Listen; resolves with the bound port. */
  async start(): Promise<number> {
    const event = this.options.events === null ? () => {} : (this.options.events ?? ((e: ServerEvent) => process.stderr.write(`${JSON.stringify(e)}\n`)));
    for (const m of this.options.repos) {
      const root = await realpath(m.path);
      await stat(join(root, "objects"));
      this.roots.set(m.name, root);
      if (this.options.updateSummary ?? true) {
        const signing = m.sign ?? this.options.sign;
        const signer = signing ? await SummarySigner.create(signing) : null;
        const k = new SummaryKeeper(root, this.options.summaryPollMs ?? 2000, signer, (e) => event({ ...e, event: String(e.event) }));
        const deltas = m.deltas ?? this.options.deltas;
        if (deltas?.enabled) {
          const w = new DeltaWorker(root, deltas, (names) => k.refresh(`deltas ${names.join(" ")}`), (e) => event({ ...e, event: String(e.event) }));
          // Generation runs beside serving; a poll only starts a scan when none is running.
          k.afterCheck = () => void w.kick();
          this.deltaWorkers.set(m.name, w);
        }
        await k.start();
        this.keepers.set(m.name, k);
      } else if (m.sign ?? this.options.sign) {
        throw new ConfigError(`repo ${m.path}: signing needs summary updates (updateSummary is off)`);
      }
    }
    await new Promise<void>((ok, fail) => {
      this.server.once("error", fail);
      this.server.listen(this.options.port ?? 8080, this.options.host ?? "127.0.0.1", () => ok());
    });
    return (this.server.address() as AddressInfo).port;
  }

  /** Stop accepting, let in-flight responses finish (up to `graceMs`), then drop what is left. */
  async stop(graceMs = this.options.shutdownGraceMs ?? 10_000): Promise<void> {
    this.closing = true;
    for (const k of this.keepers.values()) k.stop();
    const closed = new Promise<void>((ok) => this.server.close(() => ok()));
    this.server.closeIdleConnections();
    const timer = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, graceMs);
    await closed;
    clearTimeout(timer);
    // A delta or summary being written finishes, so nothing is left half-published.
    await Promise.all([...this.deltaWorkers.values()].map((w) => w.idle()));
    await Promise.all([...this.keepers.values()].map((k) => k.idle()));
  }

  private logRequest(req: IncomingMessage, res: ServerResponse, started: number): void {
    if (this.options.log === null) return;
    const entry: AccessLogEntry = {
      time: new Date().toISOString(),
      remote: req.socket.remoteAddress ?? "",
      method: req.method ?? "",
      path: req.url ?? "",
      status: res.statusCode,
      bytes: Number(res.getHeader("content-length") ?? 0),
      ms: Math.round((performance.now() - started) * 100) / 100,
    };
    if (req.headers.range) entry.range = req.headers.range;
    if (req.headers["user-agent"]) entry.ua = req.headers["user-agent"];
    (this.options.log ?? ((e) => process.stdout.write(`${JSON.stringify(e)}\n`)))(entry);
  }

  private plain(res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
    for (const [k, v] of Object.entries({ "content-type": "text/plain; charset=utf-8", "content-length": String(Buffer.byteLength(body)), ...extra })) res.setHeader(k, v);
    res.writeHead(status);
    res.end(res.req.method === "HEAD" ? undefined : body);
  }

  /** Map a request path to (repo root, repo-relative path), or null when it names nothing servable. */
  private locate(rawPath: string): { name: string; root: string; rel: string } | null {
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      return null;
    }
    if (path.includes("\0") || path.includes("\\")) return null;
    const segs = path.split("/").filter((s) => s !== "");
    if (segs.some((s) => s === "." || s === "..")) return null;
    let name = "";
    if (!this.roots.has("")) name = segs.shift() ?? "";
    const root = this.roots.get(name);
    if (root === undefined) return null;
    const rel = segs.join("/");
    if (!SERVABLE.test(rel)) return null;
    return { name, root, rel };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.closing) res.setHeader("connection", "close");
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/healthz") {
      res.setHeader("cache-control", "no-store");
      return this.plain(res, this.closing ? 503 : 200, this.closing ? "shutting down\n" : "ok\n");
    }
    if (req.method !== "GET" && req.method !== "HEAD") return this.plain(res, 405, "method not allowed\n", { allow: "GET, HEAD" });
    const loc = this.locate(url.pathname);
    if (!loc) return this.plain(res, 404, "not found\n");
    const keeper = this.keepers.get(loc.name);
    if ((loc.rel === "summary" || loc.rel === "summary.sig") && keeper?.current) return this.servePair(req, res, keeper, loc.rel);
    const full = resolve(loc.root, loc.rel);
    let real: string;
    try {
      real = await realpath(full);
    } catch {
      return this.plain(res, 404, "not found\n");
    }
    // Symlinks inside the repo must not lead outside it.
    if (real !== loc.root && !real.startsWith(loc.root + sep)) return this.plain(res, 404, "not found\n");
    const st = await stat(real);
    if (!st.isFile()) return this.plain(res, 404, "not found\n");
    const etag = `"${st.ino.toString(16)}-${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const cacheControl = IMMUTABLE.test(loc.rel) ? "public, max-age=31536000, immutable" : "no-cache";
    return this.send(req, res, { path: real, size: st.size, etag, mtimeMs: st.mtimeMs, cacheControl });
  }

  /**
   * `summary` / `summary.sig` from the keeper's in-memory snapshot, never from
   * disk, so the two always belong together: `If-Match: ETAG` asks for the
   * generation that ETag names (412 once it is no longer held), and a
   * connection that took one file gets its partner from the same generation.
   */
  private async servePair(req: IncomingMessage, res: ServerResponse, keeper: SummaryKeeper, rel: string): Promise<void> {
    const ifMatch = req.headers["if-match"];
    let snap: SummarySnapshot;
    if (ifMatch && ifMatch.trim() !== "*") {
      const wanted = ifMatch.split(/\s*,\s*/).map((t) => keeper.generation(t)).find((g) => g !== undefined);
      if (!wanted) return this.plain(res, 412, "precondition failed: that summary generation is gone\n");
      snap = wanted;
    } else {
      const pin = this.pins.get(req.socket);
      const now = Date.now();
      if (pin && !pin.served.has(rel) && now - pin.at < PAIR_PIN_MS) {
        snap = pin.snap;
        if (req.method === "GET") pin.served.add(rel);
      } else {
        snap = keeper.current!;
        if (req.method === "GET") this.pins.set(req.socket, { snap, served: new Set([rel]), at: now });
      }
    }
    const bytes = rel === "summary" ? snap.summary : snap.sig;
    if (!bytes) return this.plain(res, 404, "not found\n");
    // Tells clients this ETag is shared by both files, so If-Match with it on the other one gets the partner.
    res.setHeader(SUMMARY_PAIR_HEADER, snap.etag);
    return this.send(req, res, { bytes, size: bytes.length, etag: snap.etag, mtimeMs: snap.lastModified.getTime(), cacheControl: "no-cache" });
  }

  /** Validators, conditional requests, single ranges and the body. */
  private async send(req: IncomingMessage, res: ServerResponse, body: Body): Promise<void> {
    const st = { size: body.size, mtimeMs: body.mtimeMs };
    const etag = body.etag;
    const lastModified = new Date(Math.floor(st.mtimeMs / 1000) * 1000).toUTCString();
    res.setHeader("etag", etag);
    res.setHeader("last-modified", lastModified);
    res.setHeader("accept-ranges", "bytes");
    res.setHeader("cache-control", body.cacheControl);
    res.setHeader("content-type", "application/octet-stream");

    const inm = req.headers["if-none-match"];
    const ims = req.headers["if-modified-since"];
    if ((inm && inm.split(/\s*,\s*/).includes(etag)) || (!inm && ims && Date.parse(ims) >= Math.floor(st.mtimeMs / 1000) * 1000)) {
      res.writeHead(304);
      res.end();
      return;
    }

    let start = 0;
    let end = st.size - 1;
    let status = 200;
    const range = req.headers.range;
    const ifRange = req.headers["if-range"];
    const rangeApplies = range && (!ifRange || ifRange === etag || ifRange === lastModified);
    if (range && rangeApplies) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (m && (m[1] !== "" || m[2] !== "")) {
        if (m[1] === "") {
          start = Math.max(0, st.size - Number(m[2]));
        } else {
          start = Number(m[1]);
          if (m[2] !== "") end = Math.min(end, Number(m[2]));
        }
        if (start >= st.size || start > end) {
          res.setHeader("content-range", `bytes */${st.size}`);
          return this.plain(res, 416, "range not satisfiable\n");
        }
        status = 206;
        res.setHeader("content-range", `bytes ${start}-${end}/${st.size}`);
      }
    }
    const length = st.size === 0 ? 0 : end - start + 1;
    res.setHeader("content-length", length);
    res.writeHead(status);
    if (req.method === "HEAD" || length === 0) {
      res.end();
      return;
    }
    if ("bytes" in body) {
      res.end(body.bytes.subarray(start, end + 1));
      return;
    }
    const path = body.path;
    await new Promise<void>((ok) => {
      const stream = createReadStream(path, { start, end });
      stream.on("error", () => {
        res.destroy();
        ok();
      });
      res.on("close", () => {
        stream.destroy();
        ok();
      });
      stream.pipe(res);
    });
  }
}
