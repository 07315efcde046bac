/// <reference path="./undici-parts.d.ts" />
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { open, rm, type FileHandle } from "node:fs/promises";
// By path (see undici-parts.d.ts): undici's index would load fetch, WebSocket, caches and mocks too.
import Agent from "undici/lib/dispatcher/agent.js";
import ProxyAgent from "undici/lib/dispatcher/proxy-agent.js";
import undiciErrors from "undici/lib/core/errors.js";
import type { Dispatcher } from "undici";
import DispatcherClass from "undici/lib/dispatcher/dispatcher.js";
import dispatcherApi from "undici/lib/api/index.js";
import { FetchError } from "./errors.js";
import type { CookieJar } from "./cookies.js";

export interface HttpOptions {
  /** A fixed number of requests in flight; unset = adaptive (see AdaptiveLimit). */
  concurrency?: number;
  /** Upper bound of the adaptive in-flight limit (default 32). */
  maxConcurrency?: number;
  /** Retries per request on 5xx, timeouts and dropped connections (ostree `--network-retries`, default 5). */
  retries?: number;
  /** Idle/headers timeout per request in ms (default 30 s, ostree's low-speed window). */
  timeoutMs?: number;
  /** First backoff delay in ms; doubles each retry (default 100). */
  backoffMs?: number;
  userAgent?: string;
  /** Extra request headers (`--http-header`). */
  headers?: Array<[string, string]>;
  proxy?: string;
  tlsPermissive?: boolean;
  tlsCaPath?: string;
  tlsClientCertPath?: string;
  tlsClientKeyPath?: string;
  http2?: boolean;
  cookies?: CookieJar;
  /** Called for each completed request (tests count requests, progress counts bytes). */
  onResponse?: (info: { url: string; status: number; bytes: number }) => void;
}

export interface GetOptions {
  /** 404 (and 403/410 for files ostree treats as optional) returns null instead of throwing. */
  optional?: boolean;
  /** Reject bodies larger than this many bytes. */
  maxSize?: number;
  /** Conditional request validators (summary caching). */
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  /** Only this version (a 412 becomes a FetchError with status 412): the summary pair, see summary.ts. */
  ifMatch?: string;
}

export interface GetResult {
  status: number;
  body: Buffer;
  etag?: string;
  lastModified?: string;
  notModified: boolean;
  /** The response headers (absent for answers that did not come from a server). */
  headers?: Record<string, string | string[] | undefined>;
}

export { MAX_METADATA_SIZE } from "./limits.js";

// What undici's index does on load: request/connect/… live on Dispatcher.prototype (ProxyAgent's tunnel uses connect).
Object.assign(DispatcherClass.prototype, dispatcherApi);

const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_ABORTED",
]);

class Retryable extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** A sampler of this thread's event-loop utilization since its previous call. */
function eventLoopBusy(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return u;
  };
}

/** Windows without probing after a probe that did not pay off, or after a failure. */
const PROBE_HOLD = 4;

/** What a finished request tells the in-flight limit. */
export type RequestOutcome = "ok" | "retry" | "error";

/**
 * The number of requests allowed in flight, adapted to what the client and
 * the link can absorb. It starts at ostree's 8 and is measured in windows
 * (at least `windowMs` and `current` completions). When every slot was busy
 * and this thread was idle for at least 15 % of a window (a client already
 * busy verifying and writing gains nothing from more requests but their
 * buffers), it probes: it grows by a quarter, and keeps the growth only if
 * the next window's body throughput is at least 5 % higher; otherwise it
 * goes back and waits a few windows before probing again. A retryable
 * failure (5xx, timeout, dropped connection) halves it at once. It stays
 * within [min, max]; min = max is a fixed limit.
 */
export class AdaptiveLimit {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  /** Waiters served before `waiters` (see acquire). */
  private readonly urgentWaiters: Array<() => void> = [];
  private cur: number;
  private windowStart: number;
  private windowBytes = 0;
  private windowDone = 0;
  /** Some request waited for a slot during this window (more slots could be used). */
  private saturated = false;
  private lastRate = 0;
  /** During a probe: the limit before it and the throughput it has to beat. */
  private probe: { from: number; rate: number } | null = null;
  /** Windows to wait after a failed probe or a failure before probing again. */
  private hold = 0;

  constructor(
    readonly min: number,
    readonly max: number,
    initial = 8,
    private readonly windowMs = 250,
    private readonly now: () => number = () => performance.now(),
    /** Fraction of the time since the last call this thread was busy (event-loop utilization). */
    private readonly busy: () => number = eventLoopBusy(),
  ) {
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max < min) throw new RangeError(`AdaptiveLimit: bad bounds [${min}, ${max}]`);
    this.cur = Math.min(max, Math.max(min, initial));
    this.windowStart = now();
  }

  /** Requests currently allowed in flight. */
  get current(): number {
    return this.cur;
  }

  get inFlight(): number {
    return this.active;
  }

  /**
   * Waits for a slot. `urgent` requests go before every waiting non-urgent
   * one: a pull asks for metadata (dirtrees, which name the next objects to
   * fetch) while thousands of content requests may be queued.
   */
  async acquire(urgent = false): Promise<void> {
    while (this.active >= this.cur) {
      this.saturated = true;
      await new Promise<void>((r) => (urgent ? this.urgentWaiters : this.waiters).push(r));
    }
    this.active++;
  }

  /** Frees a slot; `bytes` is the body size received, `outcome` how the attempt ended. */
  release(outcome: RequestOutcome, bytes = 0): void {
    this.active--;
    if (outcome === "retry") this.shrink();
    else if (outcome === "ok") this.record(bytes);
    this.wake();
  }

  /** A retryable failure seen while still holding the slot (before a retry). */
  failed(): void {
    this.shrink();
  }

  private shrink(): void {
    this.cur = Math.max(this.min, Math.floor(this.cur / 2));
    this.probe = null;
    this.hold = PROBE_HOLD;
    this.resetWindow(0);
  }

  private record(bytes: number): void {
    this.windowBytes += bytes;
    this.windowDone++;
    const elapsed = this.now() - this.windowStart;
    if (elapsed < this.windowMs || this.windowDone < this.cur) return;
    const rate = this.windowBytes / elapsed;
    const busy = this.busy();
    if (this.probe) {
      if (rate < this.probe.rate * 1.05) {
        this.cur = this.probe.from;
        this.hold = PROBE_HOLD;
      }
      this.probe = null;
    } else if (this.hold > 0) {
      this.hold--;
    } else if (this.saturated && this.lastRate > 0 && busy < 0.85 && this.cur < this.max) {
      this.probe = { from: this.cur, rate };
      this.cur = Math.min(this.max, this.cur + Math.max(1, Math.floor(this.cur / 4)));
    }
    this.resetWindow(rate);
  }

  private resetWindow(rate: number): void {
    this.lastRate = rate;
    this.windowStart = this.now();
    this.windowBytes = 0;
    this.windowDone = 0;
    this.saturated = this.waiters.length + this.urgentWaiters.length > 0;
  }

  private wake(): void {
    // A woken waiter re-checks the limit, so waking one too many is harmless.
    for (let free = this.cur - this.active; free > 0 && this.urgentWaiters.length + this.waiters.length > 0; free--) (this.urgentWaiters.shift() ?? this.waiters.shift()!)();
  }
}

/**
 * HTTP(S) GETs over one keep-alive pool, at most `concurrency` at once, with
 * retries (exponential backoff) on 5xx and network failures, and `Range`
 * resumption of downloads cut off mid-body.
 */
export class HttpClient {
  readonly dispatcher: Dispatcher;
  readonly limit: AdaptiveLimit;
  readonly retries: number;
  private readonly timeoutMs: number;
  private readonly backoffMs: number;
  /** Requests sent (including retries) and body bytes received. */
  requests = 0;
  bytes = 0;

  constructor(private readonly opts: HttpOptions = {}) {
    this.retries = opts.retries ?? 5;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.backoffMs = opts.backoffMs ?? 100;
    const max = opts.concurrency ?? opts.maxConcurrency ?? 32;
    this.limit = opts.concurrency !== undefined ? new AdaptiveLimit(opts.concurrency, opts.concurrency, opts.concurrency) : new AdaptiveLimit(2, max, Math.min(8, max));
    const connect: Record<string, unknown> = { timeout: this.timeoutMs };
    if (opts.tlsPermissive) connect.rejectUnauthorized = false;
    if (opts.tlsCaPath) connect.ca = readFileSync(opts.tlsCaPath);
    if (opts.tlsClientCertPath) connect.cert = readFileSync(opts.tlsClientCertPath);
    if (opts.tlsClientKeyPath) connect.key = readFileSync(opts.tlsClientKeyPath);
    const common = {
      connections: max,
      keepAliveTimeout: 30_000,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      allowH2: opts.http2 ?? false,
      connect,
    };
    this.dispatcher = opts.proxy ? new ProxyAgent({ uri: opts.proxy, ...common }) : new Agent(common);
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** The dispatcher's request options for a GET of `url`. */
  private requestFor(url: string, extra: Record<string, string>): Dispatcher.RequestOptions {
    const { origin, path, authorization } = splitUrl(url);
    const h: Record<string, string> = { "user-agent": this.opts.userAgent ?? "libostree/2022.7 ostree-ts" };
    for (const [k, v] of this.opts.headers ?? []) h[k.toLowerCase()] = v;
    const cookie = this.opts.cookies?.headerFor(url);
    if (cookie) h.cookie = cookie;
    if (authorization) h.authorization = authorization;
    return { origin, path, method: "GET", headers: { ...h, ...extra } };
  }

  private async backoff(attempt: number): Promise<void> {
    await new Promise((r) => setTimeout(r, Math.min(this.backoffMs * 2 ** attempt, 5_000)));
  }

  /**
   * Statuses that end a request the same way for every kind of GET: 5xx is
   * retried, a missing file is `true` when optional and an error otherwise.
   */
  private async endsRequest(res: Dispatcher.ResponseData, url: string, optional: boolean | undefined): Promise<boolean> {
    const status = res.statusCode;
    if (status >= 500) {
      await res.body.dump();
      throw new Retryable(`Server returned HTTP ${status}`, status);
    }
    if (status === 404 || status === 403 || status === 410) {
      await res.body.dump();
      this.opts.onResponse?.({ url, status, bytes: 0 });
      if (optional) return true;
      throw new FetchError(`Server returned HTTP ${status} for ${redact(url)}`, redact(url), status);
    }
    return false;
  }

  /** GET a whole body into memory (metadata: before any waiting fetchBody, see AdaptiveLimit.acquire). */
  async get(url: string, o: GetOptions = {}): Promise<GetResult | null> {
    await this.limit.acquire(true);
    let outcome: RequestOutcome = "error";
    let bytes = 0;
    try {
      let last: Error | undefined;
      let lastStatus = 0;
      const partial: PartialBody = { chunks: [], have: 0 };
      for (let attempt = 0; attempt <= this.retries; attempt++) {
        if (attempt > 0) await this.backoff(attempt - 1);
        try {
          const r = await this.getOnce(url, o, partial);
          outcome = "ok";
          bytes = r?.body.length ?? 0;
          return r;
        } catch (e) {
          if (!isRetryable(e)) throw e;
          this.limit.failed();
          last = e as Error;
          lastStatus = e instanceof Retryable ? e.status : 0;
        }
      }
      throw new FetchError(`Fetching ${redact(url)}: ${describe(last)} (after ${this.retries} retries)`, redact(url), lastStatus);
    } finally {
      this.limit.release(outcome, bytes);
    }
  }

  /**
   * One attempt. A body cut off before Content-Length is kept in `partial`
   * and the next attempt asks only for the rest (`Range` + `If-Range`).
   */
  private async getOnce(url: string, o: GetOptions, partial: PartialBody): Promise<GetResult | null> {
    const extra: Record<string, string> = {};
    if (o.ifNoneMatch) extra["if-none-match"] = o.ifNoneMatch;
    if (o.ifModifiedSince) extra["if-modified-since"] = o.ifModifiedSince;
    if (o.ifMatch) extra["if-match"] = o.ifMatch;
    const resuming = partial.have > 0 && partial.total !== undefined && partial.validator !== undefined;
    if (resuming) {
      extra.range = `bytes=${partial.have}-`;
      extra["if-range"] = partial.validator!;
    }
    this.requests++;
    const res = await this.dispatcher.request(this.requestFor(url, extra));
    const status = res.statusCode;
    const etag = header(res.headers, "etag");
    const lastModified = header(res.headers, "last-modified");
    if (status === 304) {
      await res.body.dump();
      this.opts.onResponse?.({ url, status, bytes: 0 });
      return { status, body: Buffer.alloc(0), etag, lastModified, notModified: true, headers: res.headers };
    }
    if (await this.endsRequest(res, url, o.optional)) return null;
    if (status !== 200 && !(status === 206 && resuming)) {
      await res.body.dump();
      throw new FetchError(`Server returned HTTP ${status} for ${redact(url)}`, redact(url), status);
    }
    const max = o.maxSize ?? Infinity;
    if (status === 200) {
      const declared = Number(header(res.headers, "content-length") ?? "NaN");
      if (declared > max) {
        await res.body.dump();
        throw new FetchError(`${redact(url)}: metadata object of ${declared} bytes exceeds the maximum of ${max}`, redact(url), status);
      }
      partial.chunks = [];
      partial.have = 0;
      partial.total = Number.isFinite(declared) ? declared : undefined;
      partial.validator = etag ?? lastModified;
    }
    try {
      await drain(res.body, (b) => {
        partial.have += b.length;
        this.bytes += b.length;
        if (partial.have > max) throw new FetchError(`${redact(url)}: body exceeds the maximum of ${max} bytes`, redact(url), status);
        partial.chunks.push(b);
      });
    } catch (e) {
      throw isRetryable(e) ? new Retryable(describe(e as Error), 0) : e;
    }
    if (partial.total !== undefined && partial.have !== partial.total) throw new Retryable(`Transferred a partial file (${partial.have} of ${partial.total} bytes)`, 0);
    this.opts.onResponse?.({ url, status, bytes: partial.have });
    return { status: 200, body: Buffer.concat(partial.chunks), etag, lastModified, notModified: false, headers: res.headers };
  }

  /**
   * Stream a body into `dest` (created or truncated), or keep it in memory
   * while it is at most `o.memoryLimit` bytes (no file is created: a small
   * object costs no open/write/read/unlink), spilling to `dest` beyond that.
   * A connection dropped mid-body is resumed with `Range: bytes=N-` (+
   * `If-Range`) when the server gave a length and validator; a 200 answer to
   * the range restarts the body. Null for an optional 404.
   */
  async fetchBody(url: string, dest: string, o: FetchBodyOptions = {}): Promise<Downloaded | null> {
    await this.limit.acquire();
    const memoryLimit = o.memoryLimit ?? -1;
    let fh: FileHandle | null = null;
    try {
      if (memoryLimit < 0) fh = await open(dest, "w", 0o644);
    } catch (e) {
      this.limit.release("error");
      throw e;
    }
    let mem: Buffer[] = [];
    let have = 0;
    let outcome: RequestOutcome = "error";
    const append = async (b: Buffer) => {
      if (fh === null && have + b.length <= memoryLimit) {
        mem.push(b);
      } else {
        if (fh === null) {
          fh = await open(dest, "w", 0o644);
          const head = Buffer.concat(mem, have);
          mem = [];
          if (head.length > 0) await fh.write(head, 0, head.length, 0);
        }
        await fh.write(b, 0, b.length, have);
      }
      have += b.length;
    };
    try {
      let validator: string | undefined;
      let total: number | undefined;
      let last: Error | undefined;
      let lastStatus = 0;
      for (let attempt = 0; attempt <= this.retries; attempt++) {
        if (attempt > 0) await this.backoff(attempt - 1);
        const extra: Record<string, string> = {};
        const resuming = have > 0 && total !== undefined && validator !== undefined;
        if (resuming) {
          extra.range = `bytes=${have}-`;
          extra["if-range"] = validator!;
        }
        try {
          this.requests++;
          const res = await this.dispatcher.request(this.requestFor(url, extra));
          const status = res.statusCode;
          if (await this.endsRequest(res, url, o.optional)) {
            outcome = "ok";
            return null;
          }
          if (status === 200) {
            if (have > 0) {
              have = 0;
              mem = [];
              if (fh) await (fh as FileHandle).truncate(0);
            }
            const len = Number(header(res.headers, "content-length") ?? "NaN");
            total = Number.isFinite(len) ? len : undefined;
            if (total !== undefined && o.maxSize !== undefined && total > o.maxSize) {
              await res.body.dump();
              throw new FetchError(`${redact(url)}: body of ${total} bytes exceeds the expected ${o.maxSize}`, redact(url), status);
            }
            validator = header(res.headers, "etag") ?? header(res.headers, "last-modified");
          } else if (status !== 206 || !resuming) {
            await res.body.dump();
            throw new FetchError(`Server returned HTTP ${status} for ${redact(url)}`, redact(url), status);
          }
          try {
            const tooBig = (b: Buffer) => o.maxSize !== undefined && have + b.length > o.maxSize;
            const bigError = () => new FetchError(`${redact(url)}: body exceeds the expected ${o.maxSize} bytes`, redact(url), status);
            if (fh === null && total !== undefined && total <= memoryLimit) {
              // Stays in memory: every chunk is handled synchronously.
              await drain(res.body, (b) => {
                if (tooBig(b)) throw bigError();
                mem.push(b);
                have += b.length;
                this.bytes += b.length;
                o.onBytes?.(b.length);
              });
            } else {
              for await (const c of res.body) {
                const b = c as Buffer;
                if (tooBig(b)) {
                  res.body.destroy();
                  throw bigError();
                }
                await append(b);
                this.bytes += b.length;
                o.onBytes?.(b.length);
              }
            }
          } catch (e) {
            throw isRetryable(e) ? new Retryable((e as Error).message, 0) : e;
          }
          if (total !== undefined && have !== total) throw new Retryable(`Transferred a partial file (${have} of ${total} bytes)`, 0);
          this.opts.onResponse?.({ url, status, bytes: have });
          outcome = "ok";
          return fh === null ? { bytes: have, data: mem.length === 1 ? mem[0]! : Buffer.concat(mem, have) } : { bytes: have };
        } catch (e) {
          if (!isRetryable(e)) throw e;
          this.limit.failed();
          last = e as Error;
          lastStatus = e instanceof Retryable ? e.status : 0;
        }
      }
      throw new FetchError(`Fetching ${redact(url)}: ${describe(last)} (after ${this.retries} retries)`, redact(url), lastStatus);
    } catch (e) {
      if (fh !== null) await rm(dest, { force: true });
      throw e;
    } finally {
      if (fh !== null) await (fh as FileHandle).close();
      this.limit.release(outcome, have);
    }
  }
}

export interface FetchBodyOptions {
  /** 404 (and 403/410) returns null instead of throwing. */
  optional?: boolean;
  /** Reject bodies larger than this many bytes. */
  maxSize?: number;
  onBytes?: (n: number) => void;
  /** Bodies up to this size stay in memory; unset = always a file. */
  memoryLimit?: number;
}

export interface Downloaded {
  bytes: number;
  /** The body, when it stayed in memory; otherwise it is in the destination file. */
  data?: Buffer;
}

interface PartialBody {
  chunks: Buffer[];
  have: number;
  total?: number;
  validator?: string;
}

/**
 * Every chunk of a response body to `onChunk`, which must be synchronous; a
 * throw from it destroys the body and rejects. Event callbacks instead of an
 * async iterator: that costs promises and an end-of-stream watcher per body,
 * thousands of times in an object pull. A close before the end rejects as
 * the iterator would (ERR_STREAM_PREMATURE_CLOSE).
 */
function drain(body: Dispatcher.ResponseData["body"], onChunk: (b: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      reject(e);
    };
    body.on("data", (b: Buffer) => {
      if (settled) return;
      try {
        onChunk(b);
      } catch (e) {
        fail(e);
        body.destroy();
      }
    });
    body.once("error", fail);
    body.once("end", () => {
      settled = true;
      resolve();
    });
    body.once("close", () => fail(Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" })));
  });
}

/** Error text; a body shorter than its Content-Length is reported in libcurl's words, as ostree's tests expect. */
function describe(e: Error | undefined): string {
  if (!e) return "failed";
  const code = (e as { code?: string }).code;
  if (code === "UND_ERR_RES_CONTENT_LENGTH_MISMATCH" || /truncated|partial file/.test(e.message)) {
    return e.message.startsWith("Transferred a partial file") ? e.message : `Transferred a partial file (${e.message})`;
  }
  return e.message;
}

function isRetryable(e: unknown): boolean {
  if (e instanceof Retryable) return true;
  if (e instanceof FetchError) return false;
  const code = (e as { code?: string }).code;
  if (code && RETRYABLE_CODES.has(code)) return true;
  if (e instanceof undiciErrors.UndiciError) return true;
  const cause = (e as { cause?: unknown }).cause;
  return cause !== undefined && cause !== e && isRetryable(cause);
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

interface SplitUrl {
  origin: string;
  path: string;
  /** Basic auth from the URL's user info. */
  authorization?: string;
}

/** Origin (and auth) by the URL text before its path: a pull sends thousands of requests under one or two bases. */
const originCache = new Map<string, Omit<SplitUrl, "path">>();
/** Paths that WHATWG URL parsing leaves as they are (object, delta and ref paths). */
const PLAIN_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;
/** Scheme and authority only (no query, fragment or backslash ending it early). */
const PLAIN_ORIGIN = /^https?:\/\/[^/?#\\]+$/;

function splitUrl(url: string): SplitUrl {
  const slash = url.indexOf("/", url.indexOf("//") + 2);
  const prefix = slash < 0 ? "" : url.slice(0, slash);
  const path = slash < 0 ? "" : url.slice(slash);
  const cacheable = PLAIN_ORIGIN.test(prefix) && PLAIN_PATH.test(path) && !path.includes("/.");
  const cached = cacheable ? originCache.get(prefix) : undefined;
  if (cached) return { ...cached, path };
  const u = new URL(url);
  const auth = u.username || u.password ? `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString("base64")}` : undefined;
  const head = { origin: u.origin, ...(auth ? { authorization: auth } : {}) };
  if (cacheable && originCache.size < 64) originCache.set(prefix, head);
  return { ...head, path: `${u.pathname}${u.search}` };
}

/** URL without credentials, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url;
  }
}
