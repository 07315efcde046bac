import { bswap64, decode, type Value, type Variant } from "@ostree-ts/gvariant";
import { SUMMARY_TYPE, toHex } from "@ostree-ts/objstore";
import { FetchError, PullError } from "./errors.js";
import { MAX_METADATA_SIZE, type GetResult } from "./http.js";
import { MirroredHttpClient } from "./mirrorlist.js";
import { HttpSource, type PullSource } from "./source.js";

export interface SummaryRef {
  checksum: string;
  /** Size of the commit object in bytes (summary stores it little-endian). */
  commitSize: number;
  /** Commit timestamp (seconds), when the summary records it. */
  timestamp?: number;
}

export interface ParsedSummary {
  refs: Map<string, SummaryRef>;
  /** `ostree.static-deltas`: delta name → hex sha256 of its superblock. */
  deltas: Map<string, string>;
  /** The additional metadata `a{sv}`. */
  metadata: Map<string, Variant>;
  /** `ostree.summary.collection-map`: collection ID → refs. */
  collections: Map<string, Map<string, SummaryRef>>;
}

function refsFrom(v: Value): Map<string, SummaryRef> {
  const out = new Map<string, SummaryRef>();
  for (const entry of v as Value[]) {
    const [name, data] = entry as [string, Value[]];
    const [size, csum, meta] = data as [bigint, Uint8Array, Array<[string, Variant]>];
    if (!(csum instanceof Uint8Array) || csum.length !== 32) throw new PullError(`Invalid checksum for ref ${name} in summary`);
    const ts = meta.find(([k]) => k === "ostree.commit.timestamp")?.[1];
    out.set(name, {
      checksum: toHex(csum),
      commitSize: Number(size),
      timestamp: ts && ts.type === "t" ? Number(bswap64(ts.value as bigint)) : undefined,
    });
  }
  return out;
}

/** Decode a summary file; it must be normal-form `(a(s(taya{sv}))a{sv})`, as ostree requires. */
export function parseSummary(bytes: Uint8Array): ParsedSummary {
  let v: Value;
  try {
    v = decode(SUMMARY_TYPE, bytes);
  } catch (e) {
    throw new PullError(`Invalid summary: ${(e as Error).message}`);
  }
  const [refs, meta] = v as [Value, Array<[string, Variant]>];
  const metadata = new Map(meta.map(([k, val]) => [k, val] as const));
  const deltas = new Map<string, string>();
  const sd = metadata.get("ostree.static-deltas");
  if (sd && sd.type === "a{sv}") {
    for (const [name, digest] of sd.value as Array<[string, Variant]>) {
      if (digest.type === "ay") deltas.set(name, toHex(digest.value as Uint8Array));
    }
  }
  const collections = new Map<string, Map<string, SummaryRef>>();
  const cm = metadata.get("ostree.summary.collection-map");
  if (cm && cm.type === "a{sa(s(taya{sv}))}") {
    for (const [cid, entries] of cm.value as Array<[string, Value]>) collections.set(cid, refsFrom(entries));
  }
  return { refs: refsFrom(refs), deltas, metadata, collections };
}

/** A string or boolean additional-metadata value. */
export function summaryString(s: ParsedSummary, key: string): string | undefined {
  const v = s.metadata.get(key);
  return v && v.type === "s" ? (v.value as string) : undefined;
}

export function summaryBoolean(s: ParsedSummary, key: string): boolean | undefined {
  const v = s.metadata.get(key);
  return v && v.type === "b" ? (v.value as boolean) : undefined;
}

/**
 * Response header with which a server says that `summary` and `summary.sig`
 * are one pair and that `If-Match: VALUE` on the other file asks for the
 * partner of this generation (ostree-ts-server sends it; its value is the
 * pair's shared ETag). A plain static server gives each file its own ETag, so
 * `If-Match` with the other file's would only get 412s there: without this
 * header no `If-Match` is sent.
 */
export const SUMMARY_PAIR_HEADER = "ostree-summary-pair";

/** How many times a summary pair is fetched when its generation disappears in between (412). */
export const SUMMARY_PAIR_ATTEMPTS = 3;

/** The server no longer has the summary generation `summary.sig` came from (HTTP 412 to `If-Match`). */
export class SummaryGenerationGoneError extends PullError {
  override name = "SummaryGenerationGoneError";
  constructor(readonly url: string) {
    super(`${url}: the summary generation of summary.sig is gone (HTTP 412)`);
  }
}

/** `summary` and `summary.sig` did not stay one pair over SUMMARY_PAIR_ATTEMPTS tries (the server changes them faster than they can be fetched). */
export class SummaryPairError extends PullError {
  override name = "SummaryPairError";
  constructor(
    readonly url: string,
    readonly attempts: number,
  ) {
    super(`Fetching summary and summary.sig from ${url}: the summary changed between the two requests ${attempts} times in a row`);
  }
}

/**
 * One attempt at fetching `summary.sig` and then the `summary` it signs.
 * Over HTTP, when the `summary.sig` response carries SUMMARY_PAIR_HEADER, the
 * summary is asked for with `If-Match` so the server answers from the same
 * generation even on another connection; a 412 throws
 * SummaryGenerationGoneError (withSummaryPair starts over). Otherwise the
 * two files are fetched as plain GETs.
 */
export class SummaryPairFetch {
  private pairTag: string | undefined;
  /** With a mirrorlist, the mirror summary.sig came from: the summary must be that mirror's too. */
  private sigMirror: string | undefined;

  constructor(private readonly source: PullSource) {}

  private summaryUrl(rel: string): string {
    return `${(this.source as HttpSource).url.replace(/\/+$/, "")}/${rel}`;
  }

  async sig(): Promise<Uint8Array | null> {
    if (!(this.source instanceof HttpSource)) return this.source.getFile("meta", "summary.sig");
    const url = this.summaryUrl("summary.sig");
    const o = { optional: true, maxSize: MAX_METADATA_SIZE };
    let r: GetResult | null;
    if (this.source.http instanceof MirroredHttpClient) ({ result: r, mirror: this.sigMirror } = await this.source.http.getNoting(url, o));
    else r = await this.source.http.get(url, o);
    this.pairTag = r ? pairTagOf(r) : undefined;
    return r ? new Uint8Array(r.body) : null;
  }

  async summary(): Promise<Uint8Array | null> {
    if (!(this.source instanceof HttpSource) || (this.pairTag === undefined && this.sigMirror === undefined)) return this.source.getFile("meta", "summary");
    const http = this.source.http;
    const url = this.summaryUrl("summary");
    const o = { optional: true, maxSize: MAX_METADATA_SIZE, ifMatch: this.pairTag };
    try {
      // Another mirror's summary (an older sync, or one whose generations have other tags) would not be the one signed.
      const r = this.sigMirror !== undefined && http instanceof MirroredHttpClient ? await http.getFrom(this.sigMirror, url, o) : await http.get(url, o);
      return r ? new Uint8Array(r.body) : null;
    } catch (e) {
      if (e instanceof FetchError && e.status === 412) throw new SummaryGenerationGoneError(e.url);
      throw e;
    }
  }
}

function pairTagOf(r: GetResult): string | undefined {
  const v = r.headers?.[SUMMARY_PAIR_HEADER];
  const tag = Array.isArray(v) ? v[0] : v;
  return tag && tag.trim() !== "" ? tag.trim() : undefined;
}

/**
 * Run `fn` (which fetches the pair through the SummaryPairFetch it is given)
 * again from the start when the server dropped the generation between the two
 * requests, up to SUMMARY_PAIR_ATTEMPTS times; then SummaryPairError.
 */
export async function withSummaryPair<T>(source: PullSource, fn: (pair: SummaryPairFetch) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(new SummaryPairFetch(source));
    } catch (e) {
      if (!(e instanceof SummaryGenerationGoneError)) throw e;
      if (attempt >= SUMMARY_PAIR_ATTEMPTS) throw new SummaryPairError(e.url.replace(/\/summary$/, ""), attempt);
    }
  }
}
