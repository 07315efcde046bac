import type { BenchResults, OpResult } from "./harness.js";
import { OPS } from "./ops.js";

/** A later run that re-measured some rows of a results file (`pnpm bench --merge`). */
export interface MergedRun {
  invocation: string;
  date: string;
  reps: number;
  loadAverage?: number[];
  ids: string[];
}

export class MergeError extends Error {
  override name = "MergeError";
}

/**
 * `base` with the rows of `fresh` put in place of its rows of the same id (new
 * ids go where OPS lists them), each replaced row keeping its own repetition
 * count. Both runs must have measured the same input trees: rows of different
 * inputs side by side would compare nothing.
 */
export function mergeResults(base: BenchResults & { merged?: MergedRun[] }, fresh: BenchResults, invocation: string): BenchResults & { merged: MergedRun[] } {
  const digests = (r: BenchResults) => r.versions.map((v) => `${v.name}:${v.digest}`).join(" ");
  if (base.source !== fresh.source || digests(base) !== digests(fresh)) {
    throw new MergeError(`cannot merge: the saved results measured ${base.source} (${digests(base)}), this run ${fresh.source} (${digests(fresh)})`);
  }
  const rows = new Map<string, OpResult>(base.ops.map((op) => [op.id, { ...op, reps: op.reps ?? base.reps }]));
  for (const op of fresh.ops) rows.set(op.id, { ...op, reps: fresh.reps });
  const order = (id: string) => {
    const i = OPS.findIndex((o) => o.id === id);
    return i < 0 ? OPS.length : i;
  };
  const ops = [...rows.values()].sort((a, b) => order(a.id) - order(b.id));
  const ids = fresh.ops.map((op) => op.id);
  const run: MergedRun = { invocation, date: fresh.date, reps: fresh.reps, ids, ...(fresh.machine.loadAverage ? { loadAverage: fresh.machine.loadAverage } : {}) };
  const earlier = (base.merged ?? []).map((m) => ({ ...m, ids: m.ids.filter((id) => !ids.includes(id)) })).filter((m) => m.ids.length > 0);
  return { ...base, ops, merged: [...earlier, run] };
}
