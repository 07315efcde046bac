import { bswap64, decode, type Value, type Variant } from "@ostree-ts/gvariant";
import { SUMMARY_TYPE, toHex } from "@ostree-ts/objstore";
import { PullError } from "./errors.js";

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
