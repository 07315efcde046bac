import type { MergedRun } from "./merge.js";
import type { BenchResults, OpResult, ToolName, ToolResult } from "./harness.js";
import { fmtBytes, fmtKiB, fmtRatio, fmtSeconds, markdownTable, ratio } from "./stats.js";

function cell(r: ToolResult, pick: (r: ToolResult) => string): string {
  if (r.status === "ok" && r.median) return pick(r);
  return r.status;
}

function sizeCell(op: OpResult, tool: ToolName): string {
  const r = op.results[tool];
  if (r.status !== "ok") return r.status;
  const s = Object.entries(r.sizes);
  // "requests" is a count (HTTP requests answered); every other entry is bytes.
  return s.length ? s.map(([k, v]) => `${k} ${k === "requests" ? String(v) : fmtBytes(v)}`).join(", ") : "–";
}

function sizeRatio(op: OpResult): string {
  const a = op.results["ostree-ts"];
  const b = op.results.ostree;
  if (a.status !== "ok" || b.status !== "ok") return "–";
  const k = Object.keys(b.sizes)[0];
  return k ? fmtRatio(ratio(a.sizes[k], b.sizes[k])) : "–";
}

/** CPU seconds; /usr/bin/time counts in 10 ms ticks, so 0 means "under one tick". */
function fmtCpu(s: number | undefined): string {
  return s !== undefined && s < 0.01 ? "< 10 ms" : fmtSeconds(s);
}

/** The main results table: medians per tool and ostree-ts/ostree ratios. */
export function resultsTable(res: BenchResults): string {
  // Rows re-measured by `--merge` may have their own repetition count: then every row shows its count.
  const perRowReps = res.ops.some((op) => (op.reps ?? res.reps) !== res.reps);
  const rows = res.ops.map((op) => {
    const o = op.results.ostree;
    const t = op.results["ostree-ts"];
    return [
      op.title,
      ...(perRowReps ? [String(op.reps ?? res.reps)] : []),
      cell(o, (r) => fmtSeconds(r.median?.wall)),
      cell(t, (r) => fmtSeconds(r.median?.wall)),
      fmtRatio(op.ratio.wall),
      cell(o, (r) => fmtCpu(r.median?.cpu)),
      cell(t, (r) => fmtCpu(r.median?.cpu)),
      fmtRatio(op.ratio.cpu),
      cell(o, (r) => fmtKiB(r.median?.maxRssKiB)),
      cell(t, (r) => fmtKiB(r.median?.maxRssKiB)),
      fmtRatio(op.ratio.maxRss),
      sizeCell(op, "ostree"),
      sizeCell(op, "ostree-ts"),
      sizeRatio(op),
    ];
  });
  return markdownTable(
    ["operation", ...(perRowReps ? ["reps"] : []), "wall ostree", "wall ostree-ts", "ratio", "CPU ostree", "CPU ostree-ts", "ratio", "peak RSS ostree", "peak RSS ostree-ts", "ratio", "size ostree", "size ostree-ts", "ratio"],
    rows,
  );
}

export interface DeltaRow {
  label: string;
  strategies: Array<{ name: string; bytes?: number; note?: string }>;
}

/** Delta sizes per version pair: both tools' deltas and the lower bounds. */
export function deltaRows(res: BenchResults): DeltaRow[] {
  const name = (i: number) => (i < 0 ? "empty" : (res.versions[i]?.name ?? `v${i + 1}`));
  return res.ops
    .filter((op) => op.deltaPair)
    .map((op) => {
      const [from, to] = op.deltaPair as [number, number];
      const lb = res.lowerBounds.find((l) => l.from === name(from) && l.to === name(to));
      const d = (t: ToolName) => {
        const r = op.results[t];
        return r.status === "ok" ? { bytes: r.sizes.delta } : { note: r.status };
      };
      return {
        label: `${name(from)} → ${name(to)}`,
        strategies: [
          { name: "ostree static delta", ...d("ostree") },
          { name: "ostree-ts static delta", ...d("ostree-ts") },
          { name: "xz -9 of new tar", ...(lb ? { bytes: lb.xzTar } : { note: "not computed" }) },
          { name: "zstd --patch-from", ...(lb?.zstdPatch !== undefined ? { bytes: lb.zstdPatch } : { note: from < 0 ? "n/a" : lb?.zstdMissing ? "zstd missing" : "not computed" }) },
          { name: "changed bytes (raw)", ...(lb ? { bytes: lb.changedBytes } : { note: "not computed" }) },
        ],
      };
    });
}

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#7f7f7f"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * Grouped bar chart of delta sizes (log scale, one group per version pair,
 * one bar per strategy) as a standalone SVG; strategies without a number
 * get a label instead of a bar.
 */
export function deltaSvg(rows: DeltaRow[], title: string): string {
  const strategies = rows[0]?.strategies.map((s) => s.name) ?? [];
  const W = 860;
  const H = 420;
  const left = 80;
  const right = 20;
  const top = 50;
  const bottom = 110;
  const plotH = H - top - bottom;
  const all = rows.flatMap((r) => r.strategies.map((s) => s.bytes ?? 0)).filter((b) => b > 0);
  const lo = Math.floor(Math.log10(Math.max(1, Math.min(...all, 1e3))));
  const hi = Math.ceil(Math.log10(Math.max(...all, 1e4)));
  const y = (b: number) => top + plotH - ((Math.log10(b) - lo) / (hi - lo)) * plotH;
  const groupW = (W - left - right) / Math.max(1, rows.length);
  const barW = Math.min(40, (groupW - 20) / Math.max(1, strategies.length));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);
  for (let e = lo; e <= hi; e++) {
    const yy = y(10 ** e).toFixed(1);
    out.push(`<line x1="${left}" x2="${W - right}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${esc(fmtBytes(10 ** e))}</text>`);
  }
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`);
  rows.forEach((r, gi) => {
    const gx = left + gi * groupW + (groupW - barW * strategies.length) / 2;
    r.strategies.forEach((s, si) => {
      const x = gx + si * barW;
      if (s.bytes && s.bytes > 0) {
        const yy = y(s.bytes);
        out.push(`<rect x="${x.toFixed(1)}" y="${yy.toFixed(1)}" width="${(barW - 3).toFixed(1)}" height="${(top + plotH - yy).toFixed(1)}" fill="${COLORS[si % COLORS.length]}"><title>${esc(`${r.label}: ${s.name} ${fmtBytes(s.bytes)}`)}</title></rect>`);
        out.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${(yy - 4).toFixed(1)}" text-anchor="middle" font-size="9">${esc(fmtBytes(s.bytes))}</text>`);
      } else {
        out.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${top + plotH - 4}" text-anchor="end" font-size="9" transform="rotate(-90 ${(x + barW / 2).toFixed(1)} ${top + plotH - 4})" fill="#999">${esc(s.note ?? "n/a")}</text>`);
      }
    });
    out.push(`<text x="${(left + gi * groupW + groupW / 2).toFixed(1)}" y="${top + plotH + 18}" text-anchor="middle" font-weight="bold">${esc(r.label)}</text>`);
  });
  strategies.forEach((s, si) => {
    const lx = left + (si % 3) * 250;
    const ly = H - 50 + Math.floor(si / 3) * 18;
    out.push(`<rect x="${lx}" y="${ly - 9}" width="12" height="12" fill="${COLORS[si % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 18}" y="${ly + 1}">${esc(s)}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

/** Machine-specific absolute paths in commands and notes, shortened to the names the report explains. */
export function shortenPaths(s: string): string {
  return s
    .replace(/\/(?:[^\s/=]+\/)*bench-out\/work\/[^/\s]+/g, "$W")
    .replace(/\/(?:[^\s/=]+\/)*bench-out\/inputs/g, "$IN")
    .replace(/\/(?:[^\s/=]+\/)*test-images\/cache/g, "$IMAGES");
}

/**
 * BENCHMARKS.md: machine, inputs, results table, delta sizes, exact commands,
 * then `appendices` verbatim: figures measured outside `pnpm bench` (server
 * load), kept in their own committed files so a regenerated report keeps them.
 */
export function benchmarksMarkdown(res: BenchResults & { merged?: MergedRun[] }, opts: { svgPath: string; invocation: string; appendices?: string[] }): string {
  const m = res.machine;
  const lines: string[] = [];
  lines.push("# Benchmarks: ostree-ts vs ostree");
  lines.push("");
  lines.push(`Generated by \`${opts.invocation}\` (tooling/bench). Medians of ${res.reps} repetition(s), the two tools alternating; ratios are ostree-ts / ostree (below 1× means ostree-ts is smaller/faster). "not implemented" means the ostree-ts CLI lacks the command or is not built yet; such cells never hold a number.`);
  for (const m of res.merged ?? []) {
    const load = m.loadAverage?.length ? `, load average ${m.loadAverage.map((l) => l.toFixed(1)).join(", ")}` : "";
    lines.push("");
    lines.push(`Rows ${m.ids.map((id) => `\`${id}\``).join(", ")} were measured again afterwards by \`${m.invocation}\` (${m.date}, medians of ${m.reps} repetition(s)${load}) and replace that run's rows.`);
  }
  lines.push("");
  lines.push(markdownTable(
    ["", ""],
    [
      ["date", res.date],
      ["machine", `${m.nproc} CPUs (${m.cpuModel}), ${fmtBytes(m.memoryBytes)} RAM, ${m.kernel}`],
      ...(m.loadAverage?.length
        ? [["load average (1 min)", `${m.loadAverage.map((l) => l.toFixed(1)).join(", ")} (sampled during the run)${m.loadAverage.some((l) => l > m.nproc) ? ": the machine was shared with other work, so wall times are inflated; CPU times and peak RSS are the steadier figures" : ""}`]]
        : []),
      ["ostree", `${res.ostreeVersion} (/usr/bin/ostree, Debian 12)`],
      ["ostree-ts", `\`node ${res.ostreeTsCli.replace(/^.*\/apps\//, "apps/")}\` ${res.ostreeTsAvailable ? "" : "(not built at the time of this run)"}`],
      ["input", `${res.source}: ${res.versions.map((v) => `${v.name} (${v.files} files, ${fmtBytes(v.bytes)})`).join(", ")}`],
      ["measurement", "wall: Node's clock around the child; CPU: user+sys and peak RSS: `/usr/bin/time -f '%e %U %S %M'` of the child"],
    ],
  ));
  lines.push("");
  lines.push("## Results");
  lines.push("");
  lines.push(resultsTable(res));
  lines.push("");
  lines.push("## Static delta sizes and lower bounds");
  lines.push("");
  lines.push(`![delta sizes per strategy](${opts.svgPath})`);
  lines.push("");
  const rows = deltaRows(res);
  const names = rows[0]?.strategies.map((s) => s.name) ?? [];
  lines.push(markdownTable(["pair", ...names], rows.map((r) => [r.label, ...r.strategies.map((s) => (s.bytes !== undefined ? fmtBytes(s.bytes) : (s.note ?? "–")))])));
  lines.push("");
  lines.push("Lower bounds: `xz -9` of a tar of the new tree (shipping it whole), `zstd --long=27 --patch-from=old.tar` (a generic binary diff of the two tars) and the raw size of file contents of the new tree that the old tree does not have (what any content-addressed update must carry before compression).");
  lines.push("");
  const lbCmds = res.lowerBounds[0]?.commands ?? [];
  if (lbCmds.length) {
    lines.push("```");
    lines.push(...lbCmds);
    lines.push("```");
    lines.push("");
  }
  lines.push("## Inputs");
  lines.push("");
  lines.push(markdownTable(["version", "files", "bytes", "tree digest", "commit"], res.versions.map((v) => [v.name, String(v.files), fmtBytes(v.bytes), `\`${v.digest.slice(0, 16)}\``, `\`${v.commit.slice(0, 16)}\``])));
  lines.push("");
  lines.push("The input repo `$IN/archive` (archive mode) holds every version on ref `os` and on `os-vN`, with static deltas between consecutive versions and from scratch to the newest, and a summary; the real ostree prepares it and every operation's scratch state (`$W`), unmeasured, so both tools start from the same bytes.");
  lines.push("");
  lines.push("## Exact commands");
  lines.push("");
  lines.push("ostree-ts runs the same arguments as `node apps/cli/dist/ostree-ts.mjs …`. `$IMAGES` is the test-images cache, `$IN` the prepared inputs, `$W` the run's scratch dir.");
  lines.push("");
  lines.push(markdownTable(["operation", "command(s)", "note"], res.ops.map((op) => {
    const notes = (["ostree", "ostree-ts"] as ToolName[]).map((t) => (op.results[t].note ? `${t}: ${shortenPaths(op.results[t].note ?? "")}` : "")).filter(Boolean).join("; ");
    return [op.id, op.commands.map((c) => `\`${shortenPaths(c)}\``).join(" && "), notes];
  })));
  lines.push("");
  for (const a of opts.appendices ?? []) lines.push(a.trimEnd(), "");
  return `${lines.join("\n")}\n`;
}
