import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A package pinned to one exact archive version, as stored in packages/<image>.lock. */
export interface Pin {
  name: string;
  version: string;
  arch: string;
  sha256: string;
  size: number;
  /** Suite the version was found in when pinned (informative). */
  suite: string;
  /** Source package (informative; groups binaries in the README diff). */
  source: string;
}

export class AptError extends Error {
  override name = "AptError";
}

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 512 * 1024 * 1024, cwd: opts.cwd });
  if (r.error) throw new AptError(`${cmd} could not run: ${r.error.message}`);
  if (r.status !== 0) throw new AptError(`${cmd} ${args.slice(0, 6).join(" ")}${args.length > 6 ? " …" : ""} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * apt options that make apt believe nothing is installed, so it resolves a
 * whole system from scratch, with `pins` (name → version) as the only
 * preferences in force.
 */
function emptySystemOptions(pins: Map<string, string> = new Map()): string[] {
  const d = join(tmpdir(), `ostree-ts-apt-${process.pid}`);
  mkdirSync(join(d, "preferences.d"), { recursive: true });
  writeFileSync(join(d, "status"), "");
  const prefs = [...pins].map(([name, version]) => `Package: ${name}\nPin: version ${version}\nPin-Priority: 1001\n`).join("\n");
  writeFileSync(join(d, "preferences"), prefs);
  return [
    "-o", `Dir::State::status=${join(d, "status")}`,
    "-o", `Dir::State::extended_states=${join(d, "extended_states")}`,
    "-o", `Dir::Etc::preferences=${join(d, "preferences")}`,
    "-o", `Dir::Etc::preferencesparts=${join(d, "preferences.d")}`,
  ];
}

/** Parses `apt-get -s` output into name → version for every "Inst" line. */
export function parseSimulation(out: string): Map<string, { version: string; arch: string }> {
  const m = new Map<string, { version: string; arch: string }>();
  for (const line of out.split("\n")) {
    const r = /^Inst (\S+) \((\S+) .*\[(\S+)\]\)/.exec(line);
    if (r) m.set(r[1] as string, { version: r[2] as string, arch: r[3] as string });
  }
  return m;
}

/** The dependency closure (no Recommends) of `roots` on an empty system, with apt's candidate versions under `pins`. */
export function resolveClosure(roots: string[], pins: Map<string, string> = new Map()): Map<string, { version: string; arch: string }> {
  const out = run("apt-get", ["-s", "-q", "--no-install-recommends", ...emptySystemOptions(pins), "install", ...roots]);
  const m = parseSimulation(out);
  if (m.size === 0) throw new AptError(`apt-get -s install resolved no packages for ${roots.join(" ")}`);
  return m;
}

/** Every archive version of each package, with the suite it is in (from `apt-cache madison`). */
export function availableVersions(names: string[]): Map<string, Array<{ version: string; suite: string }>> {
  const out = run("apt-cache", ["madison", ...names]);
  const m = new Map<string, Array<{ version: string; suite: string }>>();
  for (const line of out.split("\n")) {
    const f = line.split("|").map((s) => s.trim());
    if (f.length < 3 || !f[2]?.endsWith("Packages")) continue;
    const name = f[0] as string;
    const suite = (f[2] as string).split(" ")[1]?.split("/")[0] ?? "";
    const list = m.get(name) ?? [];
    if (!list.some((v) => v.version === f[1])) list.push({ version: f[1] as string, suite });
    m.set(name, list);
  }
  return m;
}

/** dpkg's version order. */
export function compareVersions(a: string, b: string): number {
  if (a === b) return 0;
  return spawnSync("dpkg", ["--compare-versions", a, "lt", b]).status === 0 ? -1 : 1;
}

/** Verifies that exactly `pins` (no more, no other versions) install together on an empty system. */
export function verifyInstallable(pins: Array<{ name: string; version: string }>): void {
  const out = run("apt-get", ["-s", "-q", "--no-install-recommends", ...emptySystemOptions(), "install", ...pins.map((p) => `${p.name}=${p.version}`)]);
  const got = parseSimulation(out);
  const problems: string[] = [];
  for (const p of pins) {
    const g = got.get(p.name);
    if (!g) problems.push(`${p.name} not installed`);
    else if (g.version !== p.version) problems.push(`${p.name} ${g.version} instead of ${p.version}`);
  }
  for (const [name, g] of got) if (!pins.some((p) => p.name === name)) problems.push(`extra package ${name} ${g.version}`);
  if (problems.length) throw new AptError(`pinned set is not self-consistent: ${problems.join("; ")}`);
}

/** Archive metadata (hash, size, source) of exact name=version pairs. */
export function packageRecords(pins: Array<{ name: string; version: string }>): Map<string, { sha256: string; size: number; source: string; arch: string }> {
  const out = run("apt-cache", ["show", ...pins.map((p) => `${p.name}=${p.version}`)]);
  const m = new Map<string, { sha256: string; size: number; source: string; arch: string }>();
  for (const rec of out.split(/\n\n+/)) {
    const field = (k: string) => new RegExp(`^${k}: (.*)$`, "m").exec(rec)?.[1];
    const name = field("Package");
    const version = field("Version");
    if (!name || !version) continue;
    const key = `${name}=${version}`;
    if (m.has(key)) continue;
    m.set(key, {
      sha256: field("SHA256") ?? "",
      size: Number(field("Size") ?? 0),
      source: (field("Source") ?? name).split(" ")[0] as string,
      arch: field("Architecture") ?? "",
    });
  }
  return m;
}

/** The .deb file name `apt-get download` writes for a pin (":" of an epoch becomes "%3a"). */
export function debFileName(p: { name: string; version: string; arch: string }): string {
  return `${p.name}_${p.version.replace(/:/g, "%3a")}_${p.arch}.deb`;
}

/** Downloads the given exact versions into `dir` with `apt-get download`. */
export function downloadDebs(dir: string, pins: Pin[]): void {
  if (pins.length === 0) return;
  mkdirSync(dir, { recursive: true });
  // Running as root, apt would otherwise try to drop to _apt, which cannot write into the cache.
  run("apt-get", ["-q", "-o", "APT::Sandbox::User=root", "download", ...pins.map((p) => `${p.name}=${p.version}`)], { cwd: dir });
}

export function formatLock(image: string, pins: Pin[], comment: string[]): string {
  const head = [
    `# ${image}: exact Debian packages, generated by \`node test-images/bin/build.mjs pin\`.`,
    ...comment.map((c) => `# ${c}`),
    "# name version arch sha256 size suite source",
  ];
  const lines = [...pins].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((p) => `${p.name} ${p.version} ${p.arch} ${p.sha256} ${p.size} ${p.suite} ${p.source}`);
  return `${[...head, ...lines].join("\n")}\n`;
}

export function parseLock(text: string, path: string): Pin[] {
  const pins: Pin[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "" || line.startsWith("#")) return;
    const f = line.split(" ");
    if (f.length !== 7 || !/^[0-9a-f]{64}$/.test(f[3] as string)) throw new AptError(`${path}:${i + 1}: malformed lock line: ${line}`);
    pins.push({ name: f[0] as string, version: f[1] as string, arch: f[2] as string, sha256: f[3] as string, size: Number(f[4]), suite: f[5] as string, source: f[6] as string });
  });
  return pins;
}
