/** ot-dump.c: how log and show print commits and variants. */
import { decode, print, type Value } from "@ostree-ts/gvariant";
import { commitContentChecksum, COMMIT_TYPE, type Commit } from "@ostree-ts/objstore";

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** g_date_time_format(dt, "%Y-%m-%d %H:%M:%S +0000") in UTC. */
export function formatTimestamp(ts: number): string {
  const d = new Date(ts * 1000);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

function indented(s: string): string {
  let out = "";
  let data = s;
  for (;;) {
    const nl = data.indexOf("\n");
    if (nl >= 0) {
      out += `    ${data.slice(0, nl + 1)}`;
      data = data.slice(nl + 1);
    } else {
      if (data !== "") out += `    ${data}\n`;
      return out;
    }
  }
}

/** ot_dump_variant: ostree byteswaps (on little-endian hosts) before printing. */
export function dumpVariantBytes(type: string, bytes: Uint8Array): string {
  return `${print(type, decode(type, bytes, { byteOrder: "be", strict: false }), true)}\n`;
}

export function dumpCommit(checksum: string, c: Commit): string {
  let out = `commit ${checksum}\n`;
  if (c.parent) out += `Parent:  ${c.parent}\n`;
  out += `ContentChecksum:  ${commitContentChecksum(c)}\n`;
  out += `Date:  ${formatTimestamp(c.timestamp)}\n`;
  const version = c.metadata.find(([k]) => k === "version")?.[1];
  if (version && version.type === "s") out += `Version: ${version.value as string}\n`;
  out += c.subject ? `\n${indented(c.subject)}` : "(no subject)\n";
  if (c.body) out += `\n${indented(c.body)}`;
  return `${out}\n`;
}

export function commitJson(checksum: string, c: Commit): Record<string, unknown> {
  return {
    checksum,
    parent: c.parent,
    contentChecksum: commitContentChecksum(c),
    timestamp: c.timestamp,
    date: formatTimestamp(c.timestamp),
    subject: c.subject,
    body: c.body,
    rootTree: c.rootTree,
    rootMeta: c.rootMeta,
    metadata: Object.fromEntries(c.metadata.map(([k, v]) => [k, print(v.type, v.value as Value, false)])),
  };
}

export { COMMIT_TYPE };
