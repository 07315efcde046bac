import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

/** One measured run of one or more commands (numbers summed, RSS the peak). */
export interface Sample {
  /** Wall time in seconds (our own clock around the child). */
  wall: number;
  /** user + sys CPU seconds of the child and its waited-for children, from /usr/bin/time. */
  cpu: number;
  /** Peak RSS in KiB, from /usr/bin/time %M. */
  maxRssKiB: number;
}

export interface CommandResult extends Sample {
  status: number;
  /** Last part of stderr, for error messages. */
  stderrTail: string;
}

export const TIME_BIN = process.env.OSTREE_TS_BENCH_TIME ?? "/usr/bin/time";

/** Parses the `-f '%e %U %S %M'` line that /usr/bin/time appends to its output file. */
export function parseTimeOutput(text: string): { elapsed: number; user: number; sys: number; maxRssKiB: number } {
  const lines = text.trim().split("\n");
  const last = lines[lines.length - 1] ?? "";
  const m = /^(\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+)$/.exec(last.trim());
  if (!m) throw new Error(`cannot parse /usr/bin/time output: ${JSON.stringify(text.slice(-200))}`);
  return { elapsed: Number(m[1]), user: Number(m[2]), sys: Number(m[3]), maxRssKiB: Number(m[4]) };
}

/**
 * Runs `argv` under `/usr/bin/time -f '%e %U %S %M'`, stdout to a file in
 * `scratch` (ostree's delta generator prints a line per object), and returns
 * the child's numbers.
 */
export function runTimed(argv: string[], scratch: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CommandResult> {
  const timeFile = join(scratch, ".time");
  const outFile = join(scratch, ".stdout");
  const errFile = join(scratch, ".stderr");
  rmSync(timeFile, { force: true });
  const out = openSync(outFile, "w");
  const err = openSync(errFile, "w");
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(TIME_BIN, ["-f", "%e %U %S %M", "-o", timeFile, "--", ...argv], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", out, err],
    });
    child.on("error", (e) => {
      closeSync(out);
      closeSync(err);
      reject(new Error(`cannot run ${TIME_BIN}: ${e.message}`));
    });
    child.on("close", (code) => {
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      closeSync(out);
      closeSync(err);
      const stderr = readFileSync(errFile, "utf8");
      if (!existsSync(timeFile)) return reject(new Error(`${TIME_BIN} wrote no ${timeFile} for ${argv.join(" ")}`));
      const t = parseTimeOutput(readFileSync(timeFile, "utf8"));
      resolve({ wall, cpu: t.user + t.sys, maxRssKiB: t.maxRssKiB, status: code ?? -1, stderrTail: stderr.slice(-2000) });
    });
  });
}

/** stdout of the last runTimed in `scratch`. */
export function lastStdout(scratch: string): string {
  return readFileSync(join(scratch, ".stdout"), "utf8");
}

/** Stderr that means the ostree-ts CLI lacks the command or a flag, rather than failing at it. */
export const NOT_IMPLEMENTED_RE = /not implemented|not (yet )?supported by ostree-ts|unknown command|unknown (sub)?command|unknown option|unrecognized option|no such command/i;
