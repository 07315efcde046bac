import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { atomicWrite, type Repo } from "@ostree-ts/objstore";
import { RemoteConfigError } from "./errors.js";

/** One line of a Netscape/curl cookie jar (the format ostree's curl backend stores). */
export interface Cookie {
  domain: string;
  /** The `TRUE`/`FALSE` "include subdomains" column. */
  includeSubdomains: boolean;
  path: string;
  secure: boolean;
  /** Seconds since the epoch; 0 = session cookie. */
  expires: number;
  name: string;
  value: string;
}

/** `<repo>/<remote>.cookies.txt`, where `ostree remote add-cookie` keeps a remote's cookies. */
export function cookieJarPath(repo: Repo, remote: string): string {
  return join(repo.path, `${remote}.cookies.txt`);
}

export function parseCookieJar(text: string): Cookie[] {
  const out: Cookie[] = [];
  for (const raw of text.split("\n")) {
    let line = raw.replace(/\r$/, "");
    // curl marks HttpOnly cookies with a `#HttpOnly_` prefix; other `#` lines are comments.
    if (line.startsWith("#HttpOnly_")) line = line.slice("#HttpOnly_".length);
    else if (line.startsWith("#") || line.trim() === "") continue;
    const f = line.split("\t");
    if (f.length < 7) continue;
    out.push({
      domain: f[0]!,
      includeSubdomains: f[1] === "TRUE",
      path: f[2]!,
      secure: f[3] === "TRUE",
      expires: Number(f[4]),
      name: f[5]!,
      value: f.slice(6).join("\t"),
    });
  }
  return out;
}

export function formatCookieJar(cookies: Cookie[]): string {
  return cookies
    .map((c) => [c.domain, c.includeSubdomains ? "TRUE" : "FALSE", c.path, c.secure ? "TRUE" : "FALSE", String(c.expires), c.name, c.value].join("\t") + "\n")
    .join("");
}

/** Cookies sent with a remote's requests. */
export class CookieJar {
  constructor(readonly cookies: Cookie[]) {}

  static async load(repo: Repo, remote: string): Promise<CookieJar> {
    try {
      return new CookieJar(parseCookieJar(await readFile(cookieJarPath(repo, remote), "utf8")));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return new CookieJar([]);
      throw e;
    }
  }

  /** `Cookie:` header value for a URL, or undefined. */
  headerFor(url: string): string | undefined {
    if (this.cookies.length === 0) return undefined;
    const u = new URL(url);
    const host = u.hostname.toLowerCase();
    const now = Date.now() / 1000;
    const match = this.cookies.filter((c) => {
      const d = c.domain.toLowerCase().replace(/^\./, "");
      const hostOk = host === d || ((c.includeSubdomains || c.domain.startsWith(".")) && host.endsWith(`.${d}`));
      const pathOk = u.pathname === c.path || u.pathname.startsWith(c.path.endsWith("/") ? c.path : `${c.path}/`);
      return hostOk && pathOk && (!c.secure || u.protocol === "https:") && (c.expires === 0 || c.expires > now);
    });
    return match.length ? match.map((c) => `${c.name}=${c.value}`).join("; ") : undefined;
  }
}

export async function listCookies(repo: Repo, remote: string): Promise<Cookie[]> {
  return (await CookieJar.load(repo, remote)).cookies;
}

/** `ostree remote add-cookie`: expires 25 years from now, subdomains when DOMAIN starts with `.`. */
export async function addCookie(repo: Repo, remote: string, domain: string, path: string, name: string, value: string, now = new Date()): Promise<void> {
  const cookies = await listCookies(repo, remote);
  const expiry = new Date(now);
  expiry.setUTCFullYear(expiry.getUTCFullYear() + 25);
  const c: Cookie = { domain, includeSubdomains: domain.startsWith("."), path, secure: false, expires: Math.floor(expiry.getTime() / 1000), name, value };
  const i = cookies.findIndex((x) => x.domain === domain && x.path === path && x.name === name);
  if (i >= 0) cookies[i] = c;
  else cookies.push(c);
  await atomicWrite(repo.tmpDir, cookieJarPath(repo, remote), formatCookieJar(cookies), false);
}

/** `ostree remote delete-cookie`: `Cookie not found in jar` when nothing matches. */
export async function deleteCookie(repo: Repo, remote: string, domain: string, path: string, name: string): Promise<void> {
  const cookies = await listCookies(repo, remote);
  const kept = cookies.filter((x) => !(x.domain === domain && x.path === path && x.name === name));
  if (kept.length === cookies.length) throw new RemoteConfigError("Cookie not found in jar");
  if (kept.length === 0) await rm(cookieJarPath(repo, remote), { force: true });
  else await atomicWrite(repo.tmpDir, cookieJarPath(repo, remote), formatCookieJar(kept), false);
}

/** The `list-cookies` block for one cookie. */
export function formatCookie(c: Cookie): string {
  const d = new Date(c.expires * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  const exp = `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
  return `--\nDomain: ${c.domain}\nPath: ${c.path}\nName: ${c.name}\nSecure: ${c.secure ? "TRUE" : "FALSE"}\nExpires: ${exp}\nValue: ${c.value}\n`;
}
