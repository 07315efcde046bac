// Runs GLib (through python3-gi) as the reference implementation. Suites that
// need it skip when python3-gi is missing, unless OSTREE_TS_INTEROP=required
// (as CI sets it), where they fail instead — the same rule as interop tests.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe } from "vitest";
import { parseType, type TypeNode, type Value, type Variant } from "../../src/index.js";

const ORACLE = fileURLToPath(new URL("./glib_oracle.py", import.meta.url));
const REQUIRED = process.env.OSTREE_TS_INTEROP === "required";

let python: string | null | undefined;

/** A python interpreter that can import GLib from gi, or null. */
export function glibPython(): string | null {
  if (python === undefined) {
    python = null;
    // pyenv shims may shadow the system python that has python3-gi.
    for (const candidate of [process.env.OSTREE_TS_PYTHON, "python3", "/usr/bin/python3"]) {
      if (!candidate) continue;
      const r = spawnSync(candidate, ["-c", "from gi.repository import GLib"], { encoding: "utf8" });
      if (r.status === 0) {
        python = candidate;
        break;
      }
    }
  }
  return python;
}

export function describeGlib(name: string, fn: () => void): void {
  if (glibPython()) describe(name, fn);
  else if (REQUIRED) {
    describe(name, () => {
      throw new Error("python3-gi is required (OSTREE_TS_INTEROP=required) but cannot be imported");
    });
  } else describe.skip(name, fn);
}

export type OracleJob =
  | { op: "build"; type: string; value: unknown }
  | { op: "frombytes"; type: string; hex: string }
  | { op: "normalform"; type: string; hex: string }
  | { op: "parse"; type?: string | null; text: string };

export interface OracleResult {
  type?: string;
  hex?: string;
  p1?: string;
  p0?: string;
  normal?: boolean;
  error?: string;
}

/** Run jobs through GLib in one python process. */
export function oracle(jobs: OracleJob[]): OracleResult[] {
  const py = glibPython();
  if (!py) throw new Error("python3-gi not available");
  const r = spawnSync(py, [ORACLE], { input: JSON.stringify(jobs), encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`glib oracle failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as OracleResult[];
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** The oracle's tagged form of a value (see glib_oracle.py build()). */
export function toTagged(type: string, value: Value): unknown {
  return tag(parseType(type), value);
}

function tag(node: TypeNode, v: Value): unknown {
  switch (node.kind) {
    case "basic":
      if (node.code === "x" || node.code === "t") return String(v);
      if (node.code === "d") {
        const dv = new DataView(new ArrayBuffer(8));
        dv.setFloat64(0, v as number, true);
        return hex(new Uint8Array(dv.buffer));
      }
      return v;
    case "string":
      return v;
    case "variant": {
      const inner = v as Variant;
      return [inner.type, tag(parseType(inner.type), inner.value)];
    }
    case "maybe":
      if (v === null) return null;
      return [tag(node.element, node.element.kind === "maybe" ? (v as { just: Value }).just : v)];
    case "array":
      return Array.from(v as ArrayLike<Value>, (item) => tag(node.element, item));
    case "tuple":
      return (v as readonly Value[]).map((item, i) => tag(node.members[i]!, item));
  }
}
