import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";

/**
 * Relative module specifiers in a bundle file: static `from "./x.mjs"`, bare
 * `import "./x.mjs"` and `import("./x.mjs")`. Only `.mjs`, the extension the
 * build gives its outputs: bundled sources keep JSDoc such as `import('./client.js')`.
 */
const RELATIVE_IMPORT_RE = /(?:\bfrom|\bimport)\s*\(?\s*["'](\.{1,2}\/[^"']+\.mjs)["']/g;

/** Thrown when the CLI bundle refers to a chunk that is not there. */
export class CliSnapshotError extends Error {
  override name = "CliSnapshotError";
}

/**
 * Copy the CLI entry and every chunk it reaches through relative imports into
 * `dest`, keeping their relative layout, and return the copied entry's path.
 * The CLI is code-split (apps/cli/dist/ostree-ts.mjs + dist/chunks/), and
 * other developers rebuild it during a run; measuring a private copy keeps
 * every repetition on the same code.
 */
export function snapshotCli(cli: string, dest: string): string {
  const base = dirname(resolve(cli));
  const seen = new Set<string>();
  const visit = (file: string, from: string) => {
    if (seen.has(file)) return;
    if (!existsSync(file)) throw new CliSnapshotError(`${from} imports ${file}, which does not exist: rebuild the CLI`);
    const rel = relative(base, file);
    if (rel.startsWith("..")) throw new CliSnapshotError(`${from} imports ${file}, outside ${base}`);
    seen.add(file);
    for (const m of readFileSync(file, "utf8").matchAll(RELATIVE_IMPORT_RE)) visit(resolve(dirname(file), m[1] as string), file);
  };
  visit(resolve(cli), resolve(cli));
  rmSync(dest, { recursive: true, force: true });
  for (const file of seen) {
    const to = join(dest, relative(base, file));
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(file, to);
  }
  // Native modules (fs-ext, @napi-rs/xattr) stay external and are required
  // relative to the bundle: the copy needs the node_modules the original sees.
  const modules = nearestNodeModules(base);
  if (modules) symlinkSync(modules, join(dest, "node_modules"));
  return join(dest, basename(cli));
}

function nearestNodeModules(dir: string): string | undefined {
  for (let d = dir; ; d = dirname(d)) {
    const candidate = join(d, "node_modules");
    if (existsSync(candidate)) return candidate;
    if (dirname(d) === d) return undefined;
  }
}
