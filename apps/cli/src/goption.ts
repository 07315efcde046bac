/**
 * A command-line parser that behaves like GLib's GOption as ostree uses it:
 * options anywhere among the arguments, `--opt=val` / `--opt val`, bundled short
 * flags (`-RC`), short options taking the next argument (`-b REF`), `--`
 * ending option parsing (ostree drops the first `--`), and GOption's exact
 * error texts and `--help` layout.
 */

export type ArgKind = "none" | "string" | "filename" | "int" | "strv" | "filenamev";

export interface OptionSpec {
  long: string;
  short?: string;
  arg: ArgKind;
  description: string;
  /** Shown after `=` in --help (GOption's arg_description). */
  argDescription?: string;
  hidden?: boolean;
}

export type OptionValues = Record<string, string | number | boolean | string[] | undefined>;

/** Parse failure; `message` is GOption's text. */
export class OptionError extends Error {
  override name = "OptionError";
}

/** `-h`/`--help` seen: the caller prints help to stdout and exits 0. */
export class HelpRequested extends Error {
  override name = "HelpRequested";
}

export interface ParseResult {
  values: OptionValues;
  /** Non-option arguments in order (argv[1..] in ostree's builtins). */
  args: string[];
}

const HELP_ENTRY = { left: "-h, --help", description: "Show help options" };

function entryLeft(o: OptionSpec): string {
  let s = o.short ? `-${o.short}, --${o.long}` : `--${o.long}`;
  if (o.argDescription && o.arg !== "none") s += `=${o.argDescription}`;
  return s;
}

/** Display width as g_utf8_strwidth counts it for the texts we print (no wide chars). */
function width(s: string): number {
  return [...s].length;
}

export interface HelpOptions {
  prgname: string;
  parameterString: string;
  summary?: string;
  options: OptionSpec[];
}

/** g_option_context_get_help: the text `--help` prints and usage errors repeat on stderr. */
export function formatHelp(h: HelpOptions): string {
  const visible = h.options.filter((o) => !o.hidden);
  const lefts = visible.map(entryLeft);
  const maxLen = Math.max(width(HELP_ENTRY.left), ...lefts.map(width));
  const line = (left: string, desc: string) => `  ${left}${" ".repeat(maxLen + 4 - width(left))} ${desc}\n`;
  let out = `Usage:\n  ${h.prgname} [OPTION…]`;
  if (h.parameterString) out += ` ${h.parameterString}`;
  out += "\n\n";
  if (h.summary) out += `${h.summary}\n\n`;
  out += "Help Options:\n" + line(HELP_ENTRY.left, HELP_ENTRY.description) + "\n";
  if (visible.length) {
    out += "Application Options:\n";
    visible.forEach((o, i) => (out += line(lefts[i]!, o.description)));
    out += "\n";
  }
  return out;
}

/** strtol(s, &end, 0) as GOption's parse_int uses it, with G_MAXINT range. */
function parseInt32(value: string, optName: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(value);
  if (!m) throw new OptionError(`Cannot parse integer value “${value}” for ${optName}`);
  const body = m[2]!;
  const mag = /^0[xX]/.test(body) ? BigInt(body) : body.length > 1 && body.startsWith("0") ? BigInt(`0o${body.slice(1)}`) : BigInt(body);
  const n = m[1] === "-" ? -mag : mag;
  if (n > 2147483647n || n < -2147483648n) throw new OptionError(`Integer value “${value}” for ${optName} out of range`);
  return Number(n);
}

function store(values: OptionValues, o: OptionSpec, value: string | undefined, optName: string): void {
  switch (o.arg) {
    case "none":
      values[o.long] = true;
      return;
    case "string":
    case "filename":
      values[o.long] = value!;
      return;
    case "int":
      values[o.long] = parseInt32(value!, optName);
      return;
    case "strv":
    case "filenamev": {
      const prev = values[o.long];
      values[o.long] = [...(Array.isArray(prev) ? prev : []), value!];
      return;
    }
  }
}

/**
 * Parse `argv` (without the program name and command) against `options`.
 * Throws HelpRequested for -h/--help/-?, OptionError with GOption's message otherwise.
 */
export function parseOptions(argv: readonly string[], options: readonly OptionSpec[]): ParseResult {
  const values: OptionValues = {};
  const args: string[] = [];
  const byLong = new Map(options.map((o) => [o.long, o]));
  const byShort = new Map(options.filter((o) => o.short).map((o) => [o.short!, o]));
  let i = 0;
  let sawDashDash = false;
  const takeNext = (optName: string): string => {
    if (i + 1 < argv.length) return argv[++i]!;
    throw new OptionError(`Missing argument for ${optName}`);
  };
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      // GOption stops here and leaves the rest alone; ostree removes the first `--`.
      for (const rest of argv.slice(i + 1)) {
        if (rest === "--" && !sawDashDash) {
          sawDashDash = true;
          continue;
        }
        args.push(rest);
      }
      break;
    }
    if (arg.length < 2 || arg[0] !== "-") {
      args.push(arg);
      continue;
    }
    if (arg[1] === "-") {
      const eq = arg.indexOf("=");
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      if (name === "help" || name === "help-all") throw new HelpRequested();
      const o = byLong.get(name);
      if (!o) throw new OptionError(`Unknown option ${arg}`);
      const optName = `--${name}`;
      if (o.arg === "none") store(values, o, undefined, optName);
      else store(values, o, eq >= 0 ? arg.slice(eq + 1) : takeNext(optName), optName);
      continue;
    }
    const chars = [...arg.slice(1)];
    if (chars.some((c) => c === "h" || c === "?") && !chars.some((c) => byShort.has(c) === false && c !== "h" && c !== "?")) {
      throw new HelpRequested();
    }
    const specs = chars.map((c) => byShort.get(c));
    if (specs.some((s) => s === undefined)) throw new OptionError(`Unknown option ${arg}`);
    for (const o of specs as OptionSpec[]) {
      const optName = `-${o.short}`;
      if (o.arg === "none") store(values, o, undefined, optName);
      else store(values, o, takeNext(optName), optName);
    }
  }
  return { values, args };
}
