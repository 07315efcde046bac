import { FetchError, PullError } from "./errors.js";
import { HttpClient, MAX_METADATA_SIZE, type Downloaded, type FetchBodyOptions, type GetOptions, type GetResult, type HttpOptions } from "./http.js";
import { fetchMetalink } from "./metalink.js";

/** A remote's `url=` / `contenturl=` value naming a list of mirrors: `mirrorlist=URL`. */
export const MIRRORLIST_PREFIX = "mirrorlist=";

/**
 * The base URLs of a mirrorlist file: one per line; empty lines and lines
 * starting with `#` are skipped, as are lines that are not http(s) URLs
 * (ostree ignores local mirrors too).
 */
export function parseMirrorlist(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (line === "" || line.startsWith("#")) continue;
    let u: URL;
    try {
      u = new URL(line.trim());
    } catch {
      continue;
    }
    if (u.protocol === "http:" || u.protocol === "https:") out.push(line.trim());
  }
  return out;
}

/**
 * Fetch a mirrorlist and check mirrors in order until one serves `config`
 * (so a dead first mirror is not retried for every object); that mirror and
 * the ones after it form the list, as ostree's fetch_mirrorlist does.
 */
export async function fetchMirrorlist(http: HttpClient, listUrl: string): Promise<string[]> {
  let text: string;
  try {
    const r = await http.get(listUrl, { maxSize: MAX_METADATA_SIZE });
    text = r!.body.toString("utf8");
  } catch (e) {
    throw new PullError(`While fetching mirrorlist '${listUrl}': ${(e as Error).message}`);
  }
  const mirrors = parseMirrorlist(text);
  const out: string[] = [];
  for (const m of mirrors) {
    if (out.length === 0) {
      try {
        await http.get(`${m.replace(/\/+$/, "")}/config`, { maxSize: MAX_METADATA_SIZE });
      } catch {
        continue;
      }
    }
    out.push(m);
  }
  if (out.length === 0) throw new PullError(`No valid mirrors were found in mirrorlist '${listUrl}'`);
  return out;
}

/** One list of interchangeable base URLs; `key` (the first, without trailing slash) is the base the pull builds URLs on. */
interface MirrorSet {
  key: string;
  mirrors: string[];
  /** Mirrors before this one failed with a network or server error: later requests start here. */
  start: number;
}

const trimSlash = (u: string) => u.replace(/\/+$/, "");

/**
 * An HttpClient whose requests under a mirror set's first base URL are tried
 * on each mirror in order until one answers (any failure, a 404 included,
 * moves on, as ostree's mirrored requests do). A mirror that failed with a
 * network or server error is skipped by later requests. `pinned` answers
 * given URLs from memory (the summary a metalink already fetched and checked).
 */
export class MirroredHttpClient extends HttpClient {
  private readonly sets: MirrorSet[];

  constructor(
    opts: HttpOptions,
    lists: string[][],
    private readonly pinned = new Map<string, Buffer>(),
  ) {
    super(opts);
    const byKey = new Map<string, MirrorSet>();
    for (const l of lists) {
      const key = trimSlash(l[0]!);
      if (!byKey.has(key)) byKey.set(key, { key, mirrors: l.map(trimSlash), start: 0 });
    }
    // Longest base first, so a content list nested under the meta base wins.
    this.sets = [...byKey.values()].sort((a, b) => b.key.length - a.key.length);
  }

  private setOf(url: string): MirrorSet | undefined {
    return this.sets.find((s) => url === s.key || url.startsWith(`${s.key}/`));
  }

  private async mirrored<T>(url: string, run: (u: string) => Promise<T | null>, answeredBy?: (mirror: string) => void): Promise<T | null> {
    const set = this.setOf(url);
    if (!set) return run(url);
    const rel = url.slice(set.key.length);
    let lastError: unknown;
    let anyNull = false;
    for (let i = set.start; i < set.mirrors.length; i++) {
      try {
        const r = await run(set.mirrors[i]! + rel);
        if (r !== null) {
          answeredBy?.(set.mirrors[i]!);
          return r;
        }
        anyNull = true;
      } catch (e) {
        lastError = e;
        const missing = e instanceof FetchError && [403, 404, 410].includes(e.status);
        if (!missing && i === set.start && i + 1 < set.mirrors.length) set.start = i + 1;
      }
    }
    if (lastError !== undefined && !anyNull) throw lastError;
    return null;
  }

  /** The answer held in memory for `url`, if any (see `pinned`). */
  private fromPin(url: string): GetResult | null {
    const pin = this.pinned.get(url);
    return pin ? { status: 200, body: pin, notModified: false } : null;
  }

  override async get(url: string, o: GetOptions = {}): Promise<GetResult | null> {
    return this.fromPin(url) ?? this.mirrored(url, (u) => super.get(u, o));
  }

  /**
   * get(), and the mirror whose base answered (undefined when the URL is under
   * no mirror list or came from memory): a file that has to match this one is
   * then asked of that mirror alone (getFrom).
   */
  async getNoting(url: string, o: GetOptions = {}): Promise<{ result: GetResult | null; mirror: string | undefined }> {
    let mirror: string | undefined;
    const pin = this.fromPin(url);
    if (pin) return { result: pin, mirror };
    const result = await this.mirrored(url, (u) => super.get(u, o), (m) => (mirror = m));
    return { result, mirror };
  }

  /** `url` (under a mirror list's first base) from `mirror` only: no other mirror is tried. */
  async getFrom(mirror: string, url: string, o: GetOptions = {}): Promise<GetResult | null> {
    const pin = this.fromPin(url);
    if (pin) return pin;
    const set = this.setOf(url);
    return super.get(set ? mirror + url.slice(set.key.length) : url, o);
  }

  override async fetchBody(url: string, dest: string, o: FetchBodyOptions = {}): Promise<Downloaded | null> {
    return this.mirrored(url, (u) => super.fetchBody(u, dest, o));
  }
}

export interface MirroredRemote {
  http: MirroredHttpClient;
  /** Base URLs the pull source builds its URLs on (each the first of its mirror set). */
  url: string;
  contentUrl: string;
}

/**
 * Resolve `mirrorlist=` values of `url`/`contenturl`, or a `metalink` (the
 * summary named there, size and hash checked, fixes the base URL: the
 * directory it came from, used for content too) into one mirrored client.
 */
export async function openMirrored(httpOptions: HttpOptions, r: { url: string; contentUrl: string; metalink?: string }): Promise<MirroredRemote> {
  const probe = new HttpClient(httpOptions);
  try {
    if (r.metalink !== undefined) {
      const { summaryUrl, summary } = await fetchMetalink(probe, r.metalink);
      const base = summaryUrl.slice(0, summaryUrl.lastIndexOf("/"));
      const http = new MirroredHttpClient(httpOptions, [[base]], new Map([[`${base}/summary`, summary]]));
      return { http, url: base, contentUrl: base };
    }
    const lists: string[][] = [];
    const resolve = async (u: string): Promise<string> => {
      if (!u.startsWith(MIRRORLIST_PREFIX)) return u;
      const mirrors = await fetchMirrorlist(probe, u.slice(MIRRORLIST_PREFIX.length));
      lists.push(mirrors);
      return mirrors[0]!;
    };
    const url = await resolve(r.url);
    // contenturl unset means the same list, not a second fetch of it.
    const contentUrl = r.contentUrl === r.url ? url : await resolve(r.contentUrl);
    return { http: new MirroredHttpClient(httpOptions, lists), url, contentUrl };
  } finally {
    await probe.close();
  }
}
