import type { Repo } from "@ostree-ts/objstore";
import { JSON_OPTION, UsageError, type CommandModule } from "../command.js";
import { runWithProgress } from "./pull.js";

const pullLocal: CommandModule = {
  parameterString: "SRC_REPO [REFS...]",
  options: [
    { long: "commit-metadata-only", arg: "none", description: "Fetch only the commit metadata" },
    { long: "remote", arg: "string", description: "Add REMOTE to refspec", argDescription: "REMOTE" },
    { long: "disable-fsync", arg: "none", description: "Do not invoke fsync()" },
    { long: "per-object-fsync", arg: "none", description: "Perform writes in such a way that avoids stalling concurrent processes" },
    { long: "untrusted", arg: "none", description: "Verify checksums of local sources (always enabled for HTTP pulls)" },
    { long: "bareuseronly-files", arg: "none", description: "Reject regular files with mode outside of 0775 (world writable, suid, etc.)" },
    { long: "require-static-deltas", arg: "none", description: "Require static deltas" },
    { long: "gpg-verify", arg: "none", description: "GPG verify commits (must specify --remote)" },
    { long: "gpg-verify-summary", arg: "none", description: "GPG verify summary (must specify --remote)" },
    { long: "disable-verify-bindings", arg: "none", description: "Do not verify commit bindings" },
    { long: "depth", arg: "int", description: "Traverse DEPTH parents (-1=infinite) (default: 0)", argDescription: "DEPTH" },
    JSON_OPTION,
  ],
  async run(inv) {
    const repo = inv.repo as Repo;
    if (inv.args.length < 1) throw new UsageError("DESTINATION must be specified");
    const fetch = await import("@ostree-ts/fetch");
    const [src, ...refs] = inv.args as [string, ...string[]];
    await runWithProgress(inv, (extra) =>
      fetch.pullLocal(repo, src, {
        ...extra,
        refs,
        remote: inv.opts.remote as string | undefined,
        commitMetadataOnly: Boolean(inv.opts["commit-metadata-only"]),
        untrusted: Boolean(inv.opts.untrusted),
        bareuseronlyFiles: Boolean(inv.opts["bareuseronly-files"]),
        requireStaticDeltas: Boolean(inv.opts["require-static-deltas"]),
        gpgVerify: Boolean(inv.opts["gpg-verify"]),
        gpgVerifySummary: Boolean(inv.opts["gpg-verify-summary"]),
        disableVerifyBindings: Boolean(inv.opts["disable-verify-bindings"]),
        depth: (inv.opts.depth as number | undefined) ?? 0,
        fsync: Boolean(inv.opts["per-object-fsync"]),
      }),
      // ostree pull-local's summary line, printed even when nothing was imported.
      (r) =>
        `${r.progress.fetchedMetadata} metadata, ${r.progress.fetchedContent} content objects imported; ${fetch.formatSize(r.progress.contentBytesWritten)} content written`,
    );
  },
};
export default pullLocal;
