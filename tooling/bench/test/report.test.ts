import { describe, expect, it } from "vitest";
import type { BenchResults, OpResult } from "../src/harness.js";
import { parseTimeOutput } from "../src/measure.js";
import { benchmarksMarkdown, deltaRows, deltaSvg, resultsTable, shortenPaths } from "../src/report.js";
import { fmtBytes, fmtRatio, fmtSeconds, markdownTable, median, ratio } from "../src/stats.js";
import { deltaDir, mbase64 } from "../src/inputs.js";
import { MergeError, mergeResults } from "../src/merge.js";

describe("stats", () => {
  it("median of odd and even lists, unsorted input", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(() => median([])).toThrow(RangeError);
  });
  it("ratio is ostree-ts / ostree and undefined without both numbers", () => {
    expect(ratio(3, 2)).toBe(1.5);
    expect(ratio(undefined, 2)).toBeUndefined();
    expect(ratio(1, 0)).toBeUndefined();
    expect(fmtRatio(1.5)).toBe("1.50×");
    expect(fmtRatio(123.4)).toBe("123×");
    expect(fmtRatio(undefined)).toBe("–");
  });
  it("formats seconds and bytes", () => {
    expect(fmtSeconds(0.0123)).toBe("12 ms");
    expect(fmtSeconds(1.234)).toBe("1.23 s");
    expect(fmtSeconds(250.4)).toBe("250 s");
    expect(fmtBytes(999)).toBe("999 B");
    expect(fmtBytes(1536)).toBe("1.50 KiB");
    expect(fmtBytes(350 * 1024 * 1024)).toBe("350 MiB");
  });
  it("markdown tables escape pipes", () => {
    expect(markdownTable(["a", "b"], [["x|y", "z"]])).toBe("| a | b |\n| --- | --- |\n| x\\|y | z |");
  });
});

describe("/usr/bin/time output", () => {
  it("parses the last line of -f '%e %U %S %M'", () => {
    expect(parseTimeOutput("Command exited with non-zero status 1\n0.52 0.30 0.10 20480\n")).toEqual({ elapsed: 0.52, user: 0.3, sys: 0.1, maxRssKiB: 20480 });
    expect(() => parseTimeOutput("garbage")).toThrow(/cannot parse/);
  });
});

describe("delta names", () => {
  it("use ostree's modified base64 (checked against a real ostree repo)", () => {
    const from = "f763c832c2487ffa4d7483023fe1d620d1338af83087e8f64db7d146331fe5cc";
    const to = "5653831aa19bbc2c91bc7e9220175b356fe6d2cc3e2775e624b35573cae7c2be";
    expect(`${mbase64(from)}-${mbase64(to)}`).toBe("92PIMsJIf_pNdIMCP+HWINEzivgwh+j2TbfRRjMf5cw-VlODGqGbvCyRvH6SIBdbNW_m0sw+J3XmJLNVc8rnwr4");
    expect(deltaDir("/r", from, to)).toBe("/r/deltas/92/PIMsJIf_pNdIMCP+HWINEzivgwh+j2TbfRRjMf5cw-VlODGqGbvCyRvH6SIBdbNW_m0sw+J3XmJLNVc8rnwr4");
  });
});

function op(id: string, o: Partial<OpResult["results"]["ostree"]>, t: Partial<OpResult["results"]["ostree"]>, extra: Partial<OpResult> = {}): OpResult {
  const base = { status: "ok" as const, samples: [], sizes: {} };
  const results = { ostree: { ...base, ...o }, "ostree-ts": { ...base, ...t } };
  const a = results["ostree-ts"].median;
  const b = results.ostree.median;
  return {
    id,
    title: id,
    commands: [`ostree ${id} --repo=$W/repo`],
    results,
    ratio: { wall: ratio(a?.wall, b?.wall), cpu: ratio(a?.cpu, b?.cpu), maxRss: ratio(a?.maxRssKiB, b?.maxRssKiB) },
    ...extra,
  };
}

const sample = (wall: number, cpu: number, rss: number) => ({ wall, cpu, maxRssKiB: rss });

const results: BenchResults = {
  date: "2025-01-01T00:00:00.000Z",
  machine: { nproc: 2, memoryBytes: 8 * 1024 ** 3, cpuModel: "Test CPU", kernel: "Linux 6.1" },
  ostreeVersion: "2022.7",
  ostreeTsCli: "/x/apps/cli/dist/ostree-ts.mjs",
  ostreeTsAvailable: true,
  reps: 3,
  source: "fixture",
  versions: [
    { name: "v1", digest: "a".repeat(64), bytes: 1000, files: 10, commit: "c".repeat(64) },
    { name: "v2", digest: "b".repeat(64), bytes: 1100, files: 11, commit: "d".repeat(64) },
  ],
  ops: [
    op("fsck", { median: sample(2, 1.5, 20480) }, { median: sample(3, 3, 40960) }),
    op("pull", { median: sample(1, 1, 1024) }, { status: "not implemented", note: "pull: not implemented" }),
    op("delta", { median: sample(1, 1, 1024), sizes: { delta: 5000 } }, { median: sample(2, 2, 2048), sizes: { delta: 4000 } }, { deltaPair: [0, 1] }),
    op("http", { median: sample(1, 1, 1024), sizes: { transferred: 2048, requests: 1500 } }, { median: sample(1, 1, 1024), sizes: { transferred: 1024, requests: 12 } }),
  ],
  lowerBounds: [{ from: "v1", to: "v2", xzTar: 9000, zstdPatch: 3000, changedBytes: 2000, commands: ["xz -9"] }],
};

describe("report", () => {
  it("puts medians and ostree-ts/ostree ratios in the table; not implemented never shows a number", () => {
    const t = resultsTable(results);
    const fsck = t.split("\n").find((l) => l.startsWith("| fsck"));
    expect(fsck).toBe("| fsck | 2.00 s | 3.00 s | 1.50× | 1.50 s | 3.00 s | 2.00× | 20.0 MiB | 40.0 MiB | 2.00× | – | – | – |");
    const pull = t.split("\n").find((l) => l.startsWith("| pull")) as string;
    expect(pull).toContain("| 1.00 s | not implemented | – |");
    const delta = t.split("\n").find((l) => l.startsWith("| delta")) as string;
    expect(delta).toContain("| delta 4.88 KiB | delta 3.91 KiB | 0.80× |");
    // Requests are a count, not bytes; the size ratio is of the first entry (bytes transferred).
    const http = t.split("\n").find((l) => l.startsWith("| http")) as string;
    expect(http).toContain("| transferred 2.00 KiB, requests 1500 | transferred 1.00 KiB, requests 12 | 0.50× |");
  });
  it("lists delta sizes beside the lower bounds", () => {
    const [row] = deltaRows(results);
    expect(row?.label).toBe("v1 → v2");
    expect(row?.strategies.map((s) => s.bytes)).toEqual([5000, 4000, 9000, 3000, 2000]);
  });
  it("draws a well-formed SVG with one bar per number and labels for the rest", () => {
    const rows = deltaRows({ ...results, ops: [op("delta", { median: sample(1, 1, 1), sizes: { delta: 5000 } }, { status: "not implemented" }, { deltaPair: [0, 1] })] });
    const svg = deltaSvg(rows, "t <&>");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.trim().endsWith("</svg>")).toBe(true);
    expect(svg).toContain("t &lt;&amp;&gt;");
    expect(svg.match(/<rect [^>]*fill="#/g)?.length).toBe(4 + 5);
    expect(svg).toContain(">not implemented<");
  });
  it("writes the machine, the ostree version and the exact commands into BENCHMARKS.md", () => {
    const md = benchmarksMarkdown(results, { svgPath: "docs/bench-delta-sizes.svg", invocation: "pnpm bench" });
    expect(md).toContain("2 CPUs (Test CPU), 8.00 GiB RAM");
    expect(md).toContain("2022.7");
    expect(md).toContain("`ostree fsck --repo=$W/repo`");
    expect(md).toContain("![delta sizes per strategy](docs/bench-delta-sizes.svg)");
  });
  it("appends the appendices verbatim after the exact commands", () => {
    const md = benchmarksMarkdown(results, { svgPath: "s.svg", invocation: "pnpm bench", appendices: ["## Server load\n\n| a |\n", "## Other\n"] });
    expect(md.indexOf("## Exact commands")).toBeLessThan(md.indexOf("## Server load"));
    expect(md.indexOf("## Server load")).toBeLessThan(md.indexOf("## Other"));
    expect(md.endsWith("## Other\n\n")).toBe(true);
  });
});

describe("shortenPaths", () => {
  it("keeps option prefixes and replaces only the machine-specific path", () => {
    expect(shortenPaths("commit --repo=/w/bench-out/work/commit-x-0/repo --tree=dir=/w/test-images/cache/os-v1-ostree")).toBe(
      "commit --repo=$W/repo --tree=dir=$IMAGES/os-v1-ostree",
    );
    expect(shortenPaths("fsck --repo=/a/b/bench-out/inputs/archive")).toBe("fsck --repo=$IN/archive");
  });
});

describe("--merge", () => {
  const fresh: BenchResults = {
    ...results,
    date: "2025-01-02T00:00:00.000Z",
    reps: 5,
    machine: { ...results.machine, loadAverage: [0.4, 1.2] },
    ops: [op("fsck", { median: sample(2, 1.5, 20480) }, { median: sample(1, 1, 20480) })],
  };
  it("replaces rows of the same id, keeps the others and the order, and records each row's repetitions", () => {
    const m = mergeResults({ ...results }, fresh, "pnpm bench --only fsck --reps 5 --merge");
    expect(m.ops.map((o) => [o.id, o.reps])).toEqual([["fsck", 5], ["pull", 3], ["delta", 3], ["http", 3]]);
    expect(m.ops[0]?.ratio.wall).toBe(0.5);
    expect(m.date).toBe(results.date);
    expect(m.merged).toEqual([{ invocation: "pnpm bench --only fsck --reps 5 --merge", date: fresh.date, reps: 5, loadAverage: [0.4, 1.2], ids: ["fsck"] }]);
    const t = resultsTable(m);
    expect(t.split("\n")[0]).toMatch(/^\| operation \| reps \| wall ostree \|/);
    expect(t.split("\n").find((l) => l.startsWith("| fsck"))).toMatch(/^\| fsck \| 5 \| 2.00 s \| 1.00 s \| 0.50× \|/);
    expect(t.split("\n").find((l) => l.startsWith("| pull"))).toMatch(/^\| pull \| 3 \|/);
    const md = benchmarksMarkdown(m, { svgPath: "x.svg", invocation: "pnpm bench --reps 3" });
    expect(md).toContain("Rows `fsck` were measured again afterwards by `pnpm bench --only fsck --reps 5 --merge` (2025-01-02T00:00:00.000Z, medians of 5 repetition(s), load average 0.4, 1.2)");
  });
  it("a second merge of the same rows supersedes the first", () => {
    const once = mergeResults({ ...results }, fresh, "first");
    const twice = mergeResults(once, fresh, "second");
    expect(twice.merged.map((r) => r.invocation)).toEqual(["second"]);
  });
  it("a table without merged rows has no reps column", () => {
    expect(resultsTable(results).split("\n")[0]).toMatch(/^\| operation \| wall ostree \|/);
  });
  it("refuses results of other input trees", () => {
    const other = { ...fresh, versions: [{ ...results.versions[0]!, digest: "e".repeat(64) }, results.versions[1]!] };
    expect(() => mergeResults({ ...results }, other, "x")).toThrow(MergeError);
    expect(() => mergeResults({ ...results }, { ...fresh, source: "images" }, "x")).toThrow(/cannot merge: the saved results measured fixture/);
  });
});
