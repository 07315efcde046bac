import { execFile, execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe } from "vitest";

/** Path of the real ostree binary (override with OSTREE_BIN). */
export const OSTREE_BIN = process.env.OSTREE_BIN ?? "ostree";

/** Interop tests must fail rather than skip when this is set (CI sets it). */
export const INTEROP_REQUIRED = process.env.OSTREE_TS_INTEROP === "required";

let available: boolean | undefined;

export function interopAvailable(): boolean {
  if (available === undefined) {
    const r = spawnSync(OSTREE_BIN, ["--version"], { encoding: "utf8" });
    available = r.status === 0 && r.stdout.includes("Version:");
  }
  return available;
}

/**
 * `describe` for tests that need the real ostree: skipped when it is missing,
 * unless OSTREE_TS_INTEROP=required, where the suite fails loudly instead.
 */
export function describeInterop(name: string, fn: () => void): void {
  if (interopAvailable()) {
    describe(name, fn);
  } else if (INTEROP_REQUIRED) {
    describe(name, () => {
      throw new Error(`real ostree (${OSTREE_BIN}) is required (OSTREE_TS_INTEROP=required) but not runnable`);
    });
  } else {
    describe.skip(name, fn);
  }
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run the real ostree; never throws on non-zero exit. */
export function runOstree(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): RunResult {
  const r = spawnSync(OSTREE_BIN, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    input: opts.input,
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** Run the real ostree and return stdout; throws with stderr on failure. */
export function ostree(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = runOstree(args, opts);
  if (r.status !== 0) throw new Error(`ostree ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Run the real ostree without blocking the event loop, for tests whose HTTP
 * server lives in this process (a synchronous `ostree pull` would starve it).
 * Never throws on non-zero exit.
 */
export function runOstreeAsync(args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(OSTREE_BIN, args, { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ status: err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0, stdout, stderr }),
    );
  });
}

/** `runOstreeAsync` that returns stdout and throws with stderr on failure, as `ostree` does. */
export async function ostreeAsync(args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const r = await runOstreeAsync(args, opts);
  if (r.status !== 0) throw new Error(`ostree ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** Start a test HTTP server on 127.0.0.1 (any free port); `close` also drops kept-alive connections. */
export async function listenOnLoopback(server: Server): Promise<{ url: string; close: () => Promise<void> }> {
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

/** Poll `cond` until it holds; throws naming `what` after `ms`. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 60_000, stepMs = 50): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** A fresh temp directory, removed by the returned cleanup function. */
export function tempDir(prefix = "ostree-ts-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Run a shell script (e.g. shared/spec/vectors/mktree.sh) with arguments. */
export function sh(script: string, args: string[], cwd: string): void {
  execFileSync("sh", [script, ...args], { cwd, stdio: "pipe" });
}

/** Absolute path of shared/spec (CI lays shared/ beside the clone). */
export const SPEC_DIR = process.env.OSTREE_TS_SPEC_DIR ?? new URL("../../../../shared/spec/", import.meta.url).pathname;
export { xorshiftBytes, makeDeltaTestTree, makeDeltaTestRepo, expectOstreeFsckClean, deltaDirBytes } from "./trees.js";
export { makeGnupgKey, type GnupgKey } from "./gnupg.js";
export { bundleLikeCli } from "./bundle.js";
