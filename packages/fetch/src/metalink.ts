import { createHash } from "node:crypto";
import { PullError } from "./errors.js";
import { MAX_METADATA_SIZE, type HttpClient } from "./http.js";

/** A metalink file that does not describe a usable summary. */
export class MetalinkError extends PullError {
  override name = "MetalinkError";
}

/** What a metalink says about one file: its size, digests and http(s) URLs in document order. */
export interface MetalinkTarget {
  size: number;
  sha256?: string;
  sha512?: string;
  urls: string[];
}

interface XmlEvent {
  kind: "open" | "close" | "text";
  name?: string;
  attrs?: Record<string, string>;
  text?: string;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e: string) => {
    if (e.startsWith("#x")) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith("#")) return String.fromCodePoint(parseInt(e.slice(1), 10));
    const v = ENTITIES[e];
    if (v === undefined) throw new MetalinkError(`Invalid metalink XML: unknown entity ${m}`);
    return v;
  });
}

/** The element/text stream of a small XML document (no DTDs; comments, PIs and CDATA handled). */
function* xmlEvents(doc: string): Generator<XmlEvent> {
  let i = 0;
  const stack: string[] = [];
  // GMarkup's first checks, in its words (ostree passes them on).
  if (doc.trim() === "") throw new MetalinkError("Document was empty or contained only whitespace");
  const first = /\S/.exec(doc)!.index;
  if (doc[first] !== "<") throw new MetalinkError("Error on line 1 char 1: Document must begin with an element (e.g. <book>)");
  while (i < doc.length) {
    const lt = doc.indexOf("<", i);
    if (lt < 0) {
      yield { kind: "text", text: unescapeXml(doc.slice(i)) };
      break;
    }
    if (lt > i) yield { kind: "text", text: unescapeXml(doc.slice(i, lt)) };
    const skipTo = (end: string) => {
      const e = doc.indexOf(end, lt);
      if (e < 0) throw new MetalinkError(`Invalid metalink XML: unterminated markup at offset ${lt}`);
      return e + end.length;
    };
    if (doc.startsWith("<!--", lt)) i = skipTo("-->");
    else if (doc.startsWith("<?", lt)) i = skipTo("?>");
    else if (doc.startsWith("<![CDATA[", lt)) {
      const e = skipTo("]]>");
      yield { kind: "text", text: doc.slice(lt + 9, e - 3) };
      i = e;
    } else if (doc.startsWith("<!", lt)) i = skipTo(">");
    else {
      const gt = skipTo(">");
      const body = doc.slice(lt + 1, gt - 1);
      i = gt;
      if (body.startsWith("/")) {
        const name = body.slice(1).trim();
        if (stack.pop() !== name) throw new MetalinkError(`Invalid metalink XML: unexpected </${name}> at offset ${lt}`);
        yield { kind: "close", name };
        continue;
      }
      const selfClosing = body.endsWith("/");
      const m = /^([^\s/>]+)([\s\S]*?)\/?$/.exec(body);
      if (!m) throw new MetalinkError(`Invalid metalink XML: bad tag at offset ${lt}`);
      const attrs: Record<string, string> = {};
      for (const a of m[2]!.matchAll(/([^\s=]+)\s*=\s*("([^"]*)"|'([^']*)')/g)) attrs[a[1]!] = unescapeXml(a[3] ?? a[4] ?? "");
      yield { kind: "open", name: m[1]!, attrs };
      if (selfClosing) yield { kind: "close", name: m[1]! };
      else stack.push(m[1]!);
    }
  }
  if (stack.length) throw new MetalinkError(`Invalid metalink XML: <${stack[stack.length - 1]}> is not closed`);
}

/**
 * Read the `<file name=NAME>` entry of a metalink (version 3 layout:
 * metalink/files/file/{size,verification/hash,resources/url}) with ostree's
 * rules: the first matching file counts, only sha256/sha512 hashes, only
 * http/https URLs, and a size and a known hash must come before the URLs.
 */
export function parseMetalink(doc: string, name: string): MetalinkTarget {
  const path: string[] = [];
  let foundFile = false;
  let inOurs = false;
  let done = false;
  let hashType: string | null = null;
  let urlOk = false;
  let knownHash = false;
  const t: MetalinkTarget = { size: 0, urls: [] };
  for (const ev of xmlEvents(doc)) {
    if (ev.kind === "open") {
      path.push(ev.name!);
      const where = path.join("/");
      if (where === "metalink/files/file") {
        foundFile = true;
        inOurs = !done && ev.attrs!.name === name;
      } else if (inOurs && where === "metalink/files/file/verification/hash") {
        hashType = ev.attrs!.type ?? "";
        if (hashType === "sha256" || hashType === "sha512") knownHash = true;
      } else if (inOurs && where === "metalink/files/file/resources/url") {
        if (t.size === 0) throw new MetalinkError("No <size> element found or it is zero");
        if (!knownHash) throw new MetalinkError("No <verification> element with known <hash type=> found");
        urlOk = ev.attrs!.protocol === "http" || ev.attrs!.protocol === "https";
      }
    } else if (ev.kind === "close") {
      const where = path.join("/");
      if (where === "metalink/files/file" && inOurs) {
        inOurs = false;
        done = true;
      }
      if (where === "metalink/files/file/verification/hash") hashType = null;
      path.pop();
    } else if (inOurs) {
      const where = path.join("/");
      const text = ev.text!.trim();
      if (where === "metalink/files/file/size") t.size = Number.parseInt(text, 10) || 0;
      else if (where === "metalink/files/file/verification/hash" && (hashType === "sha256" || hashType === "sha512")) t[hashType] = text;
      else if (where === "metalink/files/file/resources/url" && urlOk && text) {
        try {
          t.urls.push(new URL(text).href);
        } catch {
          // ostree drops URLs it cannot parse
        }
      }
    }
  }
  if (!foundFile) throw new MetalinkError("No <file> element found");
  if (!done) throw new MetalinkError(`No <file name='${name}'> found`);
  if (!t.sha256 && !t.sha512) throw new MetalinkError("No <verification> hash for sha256 or sha512 found");
  if (t.sha256 && !/^[0-9a-f]{64}$/.test(t.sha256)) throw new MetalinkError("Invalid hash digest for sha256");
  if (t.sha512 && !/^[0-9a-f]{128}$/.test(t.sha512)) throw new MetalinkError("Invalid hash digest for sha512");
  if (t.urls.length === 0) throw new MetalinkError("No <url method='http'> elements found");
  return t;
}

/** Check a fetched body against the metalink entry: size, then sha512 if given, else sha256. */
export function checkMetalinkTarget(t: MetalinkTarget, body: Uint8Array): void {
  if (body.length !== t.size) throw new MetalinkError(`Expected size is ${t.size} bytes but content is ${body.length} bytes`);
  const [algo, want] = t.sha512 ? ["sha512", t.sha512] : ["sha256", t.sha256!];
  const actual = createHash(algo).update(body).digest("hex");
  if (actual !== want) throw new MetalinkError(`Expected checksum is ${want} but actual is ${actual}`);
}

/**
 * `metalink=URL` remotes: fetch the metalink, then the summary it names from
 * each of its URLs in order until one has the right size and hash.
 */
export async function fetchMetalink(http: HttpClient, metalinkUrl: string): Promise<{ summaryUrl: string; summary: Buffer }> {
  let doc: string;
  try {
    doc = (await http.get(metalinkUrl, { maxSize: MAX_METADATA_SIZE }))!.body.toString("utf8");
  } catch (e) {
    throw new PullError(`While fetching ${metalinkUrl}: ${(e as Error).message}`);
  }
  const target = parseMetalink(doc, "summary");
  let last = "";
  for (const url of target.urls) {
    try {
      const r = await http.get(url, { maxSize: MAX_METADATA_SIZE });
      checkMetalinkTarget(target, r!.body);
      return { summaryUrl: url, summary: r!.body };
    } catch (e) {
      last = (e as Error).message;
    }
  }
  throw new MetalinkError(`Exhausted ${target.urls.length} metalink targets, last error: ${last}`);
}
