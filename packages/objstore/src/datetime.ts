import { InvalidArgumentError } from "./errors.js";

const ISO =
  /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[Tt ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(?:([Zz]|UTC|GMT)|([+-])(\d{2}):?(\d{2})?)?$/;

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const MONTH = String.raw`(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?`;
const TIME_ZONE = String.raw`(?:[Tt ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(?:([Zz]|UTC|GMT)|([+-])(\d{2}):?(\d{2})?)?`;
const MONTH_FIRST = new RegExp(`^${MONTH}\\s+(\\d{1,2}),?\\s+(\\d{4})${TIME_ZONE}$`, "i");
const DAY_FIRST = new RegExp(`^(\\d{1,2})\\s+${MONTH}\\s+(\\d{4})${TIME_ZONE}$`, "i");

/** parse_datetime's `October 25 1985` / `25 Oct 1985` forms, as the same groups ISO gives. */
function monthNameDate(s: string): Array<string | undefined> | null {
  const month = (name: string) => String(MONTHS.indexOf(name.slice(0, 3).toLowerCase()) + 1);
  let m = MONTH_FIRST.exec(s);
  if (m) return [m[0], m[3], month(m[1]!), m[2], ...m.slice(4)];
  m = DAY_FIRST.exec(s);
  if (m) return [m[0], m[3], month(m[2]!), m[1], ...m.slice(4)];
  return null;
}

/** gnulib parse_datetime's relative items: `now`, `today`, `yesterday`, `tomorrow`, `[N] unit[s] [ago]`. */
function relativeDate(text: string, now: Date): Date | null {
  const s = text.trim().toLowerCase();
  if (s === "now") return new Date(now);
  if (s === "today" || s === "yesterday" || s === "tomorrow") {
    const d = new Date(now);
    d.setHours(0, 0, 0, 0);
    if (s !== "today") d.setDate(d.getDate() + (s === "yesterday" ? -1 : 1));
    return d;
  }
  const rel = /^(?:([+-]?\d+)\s*)?(second|sec|minute|min|hour|day|week|fortnight|month|year)s?(\s+ago)?$/.exec(s);
  if (!rel) return null;
  const n = Number(rel[1] ?? 1) * (rel[3] ? -1 : 1);
  const d = new Date(now);
  switch (rel[2]) {
    case "second":
    case "sec":
      d.setSeconds(d.getSeconds() + n);
      break;
    case "minute":
    case "min":
      d.setMinutes(d.getMinutes() + n);
      break;
    case "hour":
      d.setHours(d.getHours() + n);
      break;
    case "day":
      d.setDate(d.getDate() + n);
      break;
    case "week":
    case "fortnight":
      d.setDate(d.getDate() + (rel[2] === "week" ? 7 : 14) * n);
      break;
    case "month":
      d.setMonth(d.getMonth() + n);
      break;
    case "year":
      d.setFullYear(d.getFullYear() + n);
      break;
  }
  return d;
}

/**
 * Parse a `--timestamp` value to seconds since the epoch, as ostree does with
 * gnulib's parse_datetime for the forms scripts use: `@EPOCH[.frac]`,
 * `YYYY-MM-DD`, `YYYY-MM-DD[T ]HH:MM[:SS[.frac]]` with an optional `Z`, `UTC`,
 * `GMT` or `±HH[:MM]` zone (none = local time, honouring TZ), and month
 * names (`October 25 1985`, `Oct 25, 1985 10:00`, `25 October 1985`), and the
 * relative items `now`, `today`, `yesterday`, `tomorrow`, `N units ago`.
 * Fractions are truncated like ostree's use of tv_sec.
 */
export function parseTimestamp(text: string, now = new Date()): number {
  const s = text.trim();
  const epoch = /^@([+-]?\d+)(?:[.,]\d+)?$/.exec(s);
  if (epoch) return Number(epoch[1]);
  const m = ISO.exec(s) ?? monthNameDate(s);
  if (!m) {
    const rel = relativeDate(s, now);
    if (rel) return Math.floor(rel.getTime() / 1000);
    throw new InvalidArgumentError(`Could not parse '${text}'`);
  }
  const [y, mo, d, h = "0", mi = "0", sec = "0"] = m.slice(1, 7) as string[];
  const parts = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec)] as const;
  if (parts[1] > 11 || parts[2] < 1 || parts[2] > 31 || parts[3] > 24 || parts[4] > 59 || parts[5] > 60) {
    throw new InvalidArgumentError(`Could not parse '${text}'`);
  }
  let ms: number;
  if (m[8] || m[9]) {
    ms = Date.UTC(...parts);
    if (m[9]) {
      const off = (Number(m[10]) * 60 + Number(m[11] ?? 0)) * 60_000;
      ms -= m[9] === "+" ? off : -off;
    }
  } else {
    ms = new Date(...parts).getTime();
  }
  return Math.floor(ms / 1000);
}
