import { setFlagsFromString } from "node:v8";
import type { Repo } from "@ostree-ts/objstore";
import type { PullOptions, PullResult } from "@ostree-ts/fetch";
import { JSON_OPTION, UsageError, type CommandModule, type Invocation } from "../command.js";
import type { OptionSpec } from "../goption.js";

export const PULL_OPTIONS: OptionSpec[] = [
  { long: "commit-metadata-only", arg: "none", description: "Fetch only the commit metadata" },
  { long: "cache-dir", arg: "filename", description: "Use custom cache dir" },
  { long: "disable-fsync", arg: "none", description: "Do not invoke fsync()" },
  { long: "per-object-fsync", arg: "none", description: "Perform writes in such a way that avoids stalling concurrent processes" },
  { long: "disable-static-deltas", arg: "none", description: "Do not use static deltas" },
  { long: "require-static-deltas", arg: "none", description: "Require static deltas" },
  { long: "mirror", arg: "none", description: "Write refs suitable for a mirror and fetches all refs if none provided" },
  { long: "subpath", arg: "strv", description: "Only pull the provided subpath(s)" },
  { long: "untrusted", arg: "none", description: "Verify checksums of local sources (always enabled for HTTP pulls)" },
  { long: "http-trusted", arg: "none", description: "Do not verify checksums of HTTP sources (mostly useful when mirroring)" },
  { long: "bareuseronly-files", arg: "none", description: "Reject regular files with mode outside of 0775 (world writable, suid, etc.)" },
  { long: "dry-run", arg: "none", description: "Only print information on what will be downloaded (requires static deltas)" },
  { long: "depth", arg: "int", description: "Traverse DEPTH parents (-1=infinite) (default: 0)", argDescription: "DEPTH" },
  { long: "url", arg: "string", description: "Pull objects from this URL instead of the one from the remote config", argDescription: "URL" },
  { long: "http-header", arg: "strv", description: "Add NAME=VALUE as HTTP header to all requests", argDescription: "NAME=VALUE" },
  { long: "update-frequency", arg: "int", description: "Sets the update frequency, in milliseconds (0=1000ms) (default: 0)", argDescription: "FREQUENCY" },
  { long: "network-retries", arg: "int", description: "Specifies how many times each download should be retried upon error (default: 5)", argDescription: "N" },
  { long: "localcache-repo", short: "L", arg: "filenamev", description: "Add REPO as local cache source for objects during this pull", argDescription: "REPO" },
  { long: "timestamp-check", short: "T", arg: "none", description: "Require fetched commits to have newer timestamps" },
  { long: "timestamp-check-from-rev", arg: "string", description: "Require fetched commits to have newer timestamps than given rev" },
  { long: "disable-verify-bindings", arg: "none", description: "Do not verify commit bindings" },
  // Not in ostree: per-request timeout in seconds (ostree's -T is --timestamp-check).
  { long: "timeout", arg: "int", description: "Per-request network timeout in seconds", argDescription: "SECS", hidden: true },
  JSON_OPTION,
];

/** Progress on a TTY, the final status line otherwise (as ostree's console progress does). */
export async function runWithProgress(
  inv: Invocation,
  run: (o: Partial<PullOptions>) => Promise<PullResult>,
  finalLine?: (r: PullResult) => string | null,
): Promise<void> {
  // Destructured so the bundle loads progress.ts alone (build.mjs deep imports), not fetch's index.
  const { TtyProgressBar, formatFinalStatus, formatSize } = await import("@ostree-ts/fetch");
  const json = Boolean(inv.opts.json);
  const tty = process.stdout.isTTY && !json;
  // The pull spaces its events by --update-frequency, so the bar draws each one.
  const bar = tty ? new TtyProgressBar(process.stdout, 0) : null;
  const updateFrequency = inv.opts["update-frequency"] as number | undefined;
  const result = await run({ onProgress: bar ? (p) => bar.update(p) : undefined, updateFrequency });
  if (result.dryRun && !json) {
    // ostree's dry-run console callback: what the chosen deltas would fetch, and nothing else.
    const t = result.deltaTotals;
    inv.out.print(`Delta update: ${t.fetchedParts}/${t.parts} parts, ${formatSize(t.fetchedSize)}/${formatSize(t.size)}, ${formatSize(t.usize)} total uncompressed\n`);
    return;
  }
  const line = finalLine
    ? finalLine(result)
    : result.progress.bytesTransferred > 0
      ? formatFinalStatus(result.progress, result.deltaParts, result.dryRun)
      : null;
  if (json) {
    inv.out.print(
      `${JSON.stringify({
        refs: result.refs,
        commits: result.commits,
        fetched: { metadata: result.progress.fetchedMetadata, content: result.progress.fetchedContent, deltaParts: result.deltaParts },
        localcache: { metadata: result.progress.localcacheMetadata, content: result.progress.localcacheContent },
        skipped: result.progress.skipped,
        bytesTransferred: result.progress.bytesTransferred,
        contentBytesWritten: result.progress.contentBytesWritten,
        requests: result.requests,
        inFlightLimit: result.inFlightLimit,
        elapsedMs: result.progress.elapsedMs,
      })}\n`,
    );
  } else if (bar) {
    bar.finish(line ?? "");
  } else if (line) {
    inv.out.print(`${line}\n`);
  }
}

const pull: CommandModule = {
  parameterString: "REMOTE [BRANCH...]",
  options: PULL_OPTIONS,
  async run(inv) {
    const repo = inv.repo as Repo;
    if (inv.args.length < 1) throw new UsageError("REMOTE must be specified");
    // undici parses HTTP with llhttp (WebAssembly). After a few responses V8 recompiles its main
    // function with TurboFan on a background thread: ~85 ms of CPU and ~35 MiB of peak RSS, and
    // the process cannot exit before that compile ends (about 50 ms of wall time on every pull).
    // Liftoff's code was measured as fast on a 3 172-object pull, so the recompile never pays.
    // Set before the first request compiles the module; it only concerns WebAssembly.
    setFlagsFromString("--liftoff-only");
    // pull.ts and what it imports, not finders and the rest of fetch's index (build.mjs deep imports).
    const { pull: pullRemote } = await import("@ostree-ts/fetch");
    let [remote, ...refs] = inv.args as [string, ...string[]];
    // `ostree pull REMOTE:REF` form.
    const colon = remote.indexOf(":");
    if (colon >= 0) {
      refs = [remote.slice(colon + 1), ...refs];
      remote = remote.slice(0, colon);
    }
    const headers = ((inv.opts["http-header"] as string[] | undefined) ?? []).map((kv): [string, string] => {
      const eq = kv.indexOf("=");
      if (eq < 0) throw new UsageError("--http-header must be of the form NAME=VALUE");
      return [kv.slice(0, eq), kv.slice(eq + 1)];
    });
    const timeout = inv.opts.timeout as number | undefined;
    await runWithProgress(inv, (extra) =>
      pullRemote(repo, remote, {
        ...extra,
        refs,
        mirror: Boolean(inv.opts.mirror),
        depth: (inv.opts.depth as number | undefined) ?? 0,
        commitMetadataOnly: Boolean(inv.opts["commit-metadata-only"]),
        subpaths: inv.opts.subpath as string[] | undefined,
        dryRun: Boolean(inv.opts["dry-run"]),
        disableStaticDeltas: Boolean(inv.opts["disable-static-deltas"]),
        requireStaticDeltas: Boolean(inv.opts["require-static-deltas"]),
        localcacheRepos: inv.opts["localcache-repo"] as string[] | undefined,
        untrusted: Boolean(inv.opts.untrusted),
        httpTrusted: Boolean(inv.opts["http-trusted"]),
        bareuseronlyFiles: Boolean(inv.opts["bareuseronly-files"]),
        timestampCheck: Boolean(inv.opts["timestamp-check"]),
        timestampCheckFromRev: inv.opts["timestamp-check-from-rev"] as string | undefined,
        disableVerifyBindings: Boolean(inv.opts["disable-verify-bindings"]),
        url: inv.opts.url as string | undefined,
        httpHeaders: headers,
        retries: inv.opts["network-retries"] as number | undefined,
        timeoutMs: timeout !== undefined ? timeout * 1000 : undefined,
        fsync: Boolean(inv.opts["per-object-fsync"]),
        cacheDir: inv.opts["cache-dir"] as string | undefined,
      }),
    );
  },
};
export default pull;
