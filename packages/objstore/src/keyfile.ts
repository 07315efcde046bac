import { RepoError } from "./errors.js";

type Line = { kind: "raw"; text: string } | { kind: "entry"; key: string; value: string };

interface Group {
  name: string;
  header: string;
  lines: Line[];
}

/**
 * GKeyFile-compatible INI reader/writer that keeps comments, blank lines and
 * key order, so `config set` changes only the line it names.
 */
export class KeyFile {
  private readonly leading: Line[] = [];
  private readonly groups: Group[] = [];

  static parse(text: string, source = "keyfile"): KeyFile {
    const kf = new KeyFile();
    let current: Group | undefined;
    const lines = text.split("\n");
    if (lines.at(-1) === "") lines.pop();
    lines.forEach((raw, i) => {
      const line = raw.replace(/\r$/, "");
      const trimmed = line.trim();
      if (trimmed === "" || trimmed.startsWith("#")) {
        (current ? current.lines : kf.leading).push({ kind: "raw", text: line });
        return;
      }
      if (trimmed.startsWith("[")) {
        if (!trimmed.endsWith("]")) throw new RepoError(`${source}:${i + 1}: invalid group header ${JSON.stringify(line)}`);
        current = { name: trimmed.slice(1, -1), header: line, lines: [] };
        kf.groups.push(current);
        return;
      }
      const eq = line.indexOf("=");
      if (eq < 0) throw new RepoError(`${source}:${i + 1}: key file contains line ${JSON.stringify(line)} which is not a key-value pair, group, or comment`);
      if (!current) throw new RepoError(`${source}:${i + 1}: key file does not start with a group`);
      current.lines.push({ kind: "entry", key: line.slice(0, eq).trim(), value: line.slice(eq + 1).replace(/^[ \t]+/, "") });
    });
    return kf;
  }

  toString(): string {
    const out: string[] = [];
    const emit = (l: Line) => out.push(l.kind === "raw" ? l.text : `${l.key}=${l.value}`);
    this.leading.forEach(emit);
    for (const g of this.groups) {
      out.push(g.header);
      g.lines.forEach(emit);
    }
    return out.length ? `${out.join("\n")}\n` : "";
  }

  groupNames(): string[] {
    return this.groups.map((g) => g.name);
  }

  hasGroup(group: string): boolean {
    return this.groups.some((g) => g.name === group);
  }

  keys(group: string): string[] {
    const g = this.group(group);
    return g ? g.lines.flatMap((l) => (l.kind === "entry" ? [l.key] : [])) : [];
  }

  private group(name: string): Group | undefined {
    // GKeyFile merges duplicate groups; the last definition of a key wins.
    return this.groups.findLast((g) => g.name === name);
  }

  /** Raw (still escaped) value, or undefined. */
  getRaw(group: string, key: string): string | undefined {
    for (const g of [...this.groups].reverse()) {
      if (g.name !== group) continue;
      const e = g.lines.findLast((l) => l.kind === "entry" && l.key === key);
      if (e && e.kind === "entry") return e.value;
    }
    return undefined;
  }

  getString(group: string, key: string): string | undefined {
    const raw = this.getRaw(group, key);
    return raw === undefined ? undefined : unescapeValue(raw);
  }

  getBoolean(group: string, key: string, fallback: boolean): boolean {
    const raw = this.getRaw(group, key);
    if (raw === undefined) return fallback;
    const v = raw.trim();
    if (v === "true" || v === "1") return true;
    if (v === "false" || v === "0") return false;
    throw new RepoError(`Key file contains key “${key}” in group “${group}” which has a value that cannot be interpreted.`);
  }

  getInteger(group: string, key: string, fallback: number): number {
    const raw = this.getRaw(group, key);
    if (raw === undefined) return fallback;
    const n = Number.parseInt(raw.trim(), 10);
    if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n)) {
      throw new RepoError(`Key file contains key “${key}” in group “${group}” which has a value that cannot be interpreted.`);
    }
    return n;
  }

  getList(group: string, key: string): string[] | undefined {
    const raw = this.getRaw(group, key);
    if (raw === undefined) return undefined;
    return raw.split(/(?<!\\)[;,]/).filter((s, i, a) => !(i === a.length - 1 && s === "")).map(unescapeValue);
  }

  setString(group: string, key: string, value: string): void {
    this.setRaw(group, key, escapeValue(value));
  }

  setRaw(group: string, key: string, raw: string): void {
    let g = this.group(group);
    if (!g) {
      g = { name: group, header: `[${group}]`, lines: [] };
      this.groups.push(g);
    }
    const e = g.lines.findLast((l) => l.kind === "entry" && l.key === key);
    if (e && e.kind === "entry") {
      e.value = raw;
      return;
    }
    // Insert after the last entry, before trailing blank/comment lines.
    let at = g.lines.length;
    while (at > 0 && g.lines[at - 1]!.kind === "raw") at--;
    g.lines.splice(at, 0, { kind: "entry", key, value: raw });
  }

  /** Remove a key; returns whether it existed. */
  removeKey(group: string, key: string): boolean {
    let found = false;
    for (const g of this.groups) {
      if (g.name !== group) continue;
      const before = g.lines.length;
      g.lines = g.lines.filter((l) => !(l.kind === "entry" && l.key === key));
      found ||= g.lines.length !== before;
    }
    return found;
  }

  removeGroup(group: string): boolean {
    const before = this.groups.length;
    const kept = this.groups.filter((g) => g.name !== group);
    this.groups.splice(0, this.groups.length, ...kept);
    return kept.length !== before;
  }
}

export function unescapeValue(raw: string): string {
  return raw.replace(/\\(.)/g, (_, c: string) => ({ s: " ", n: "\n", t: "\t", r: "\r", "\\": "\\" })[c] ?? `\\${c}`);
}

export function escapeValue(v: string): string {
  return v
    .replace(/\\/g, "\\\\")
    .replace(/\n/g, "\\n")
    .replace(/\t/g, "\\t")
    .replace(/\r/g, "\\r")
    .replace(/^ /, "\\s");
}
