import { readFile } from "node:fs/promises";
import { InvalidArgumentError } from "./errors.js";

/**
 * `--statoverride` entries keyed by absolute tree path (`/usr/bin/foo`).
 * `adds` are ORed into the mode; `overrides` replace the permission bits.
 */
export interface StatOverrides {
  adds: Map<string, number>;
  overrides: Map<string, number>;
}

/** g_ascii_strtod then a cast to guint32, as ostree reads statoverride modes: decimal (or 0x hex), fractions truncated. */
function strtodMode(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))/.exec(s);
  if (!m) return 0;
  const text = m[1]!;
  const neg = text.startsWith("-");
  const body = text.replace(/^[+-]/, "");
  const n = /^0[xX]/.test(body) ? parseInt(body.slice(2), 16) : Number(body);
  const v = Math.trunc(neg ? -n : n);
  return v >>> 0;
}

/** Lines of a file the way ot_parse_file_by_line splits them: on `\n`, empty lines dropped. */
function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

/**
 * Parse a statoverride file: each line is `MODE PATH` (MODE in decimal, ORed
 * into the file's mode) or `=MODE PATH` (replaces the permission bits).
 */
export function parseStatOverride(text: string): StatOverrides {
  const out: StatOverrides = { adds: new Map(), overrides: new Map() };
  for (const line of lines(text)) {
    const spc = line.indexOf(" ");
    if (spc < 0) throw new InvalidArgumentError("Malformed statoverride file (no space found)");
    const path = line.slice(spc + 1);
    if (line.startsWith("=")) out.overrides.set(path, strtodMode(line.slice(1)));
    else out.adds.set(path, strtodMode(line));
  }
  return out;
}

/** Parse a skip-list file: one absolute tree path per line. */
export function parseSkipList(text: string): string[] {
  return lines(text);
}

async function readUtf8(path: string): Promise<string> {
  const buf = await readFile(path);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(buf);
  } catch {
    throw new InvalidArgumentError(`${path}: invalid UTF-8`);
  }
}

export async function loadStatOverrideFile(path: string): Promise<StatOverrides> {
  return parseStatOverride(await readUtf8(path));
}

export async function loadSkipListFile(path: string): Promise<string[]> {
  return parseSkipList(await readUtf8(path));
}
