/** Median of a non-empty list (mean of the middle two for even lengths). */
export function median(xs: number[]): number {
  if (xs.length === 0) throw new RangeError("median of an empty list");
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** ostree-ts / ostree, or undefined when either side has no number (or ostree's is 0). */
export function ratio(ts: number | undefined, ref: number | undefined): number | undefined {
  if (ts === undefined || ref === undefined || ref === 0) return undefined;
  return ts / ref;
}

export function fmtRatio(r: number | undefined): string {
  if (r === undefined) return "–";
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`;
}

export function fmtSeconds(s: number | undefined): string {
  if (s === undefined) return "–";
  if (s < 1) return `${(s * 1000).toFixed(0)} ms`;
  if (s < 100) return `${s.toFixed(2)} s`;
  return `${s.toFixed(0)} s`;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function fmtBytes(n: number | undefined): string {
  if (n === undefined) return "–";
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${UNITS[u]}`;
}

/** Peak RSS given in KiB (as /usr/bin/time's %M reports it). */
export function fmtKiB(k: number | undefined): string {
  return k === undefined ? "–" : fmtBytes(k * 1024);
}

/** A GitHub-flavoured Markdown table; `|` in cells is escaped. */
export function markdownTable(header: string[], rows: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, "\\|").replace(/\n/g, " ");
  const line = (cells: string[]) => `| ${cells.map(esc).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}
