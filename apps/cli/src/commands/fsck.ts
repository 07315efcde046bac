import { setFlagsFromString } from "node:v8";
import { fsck as runFsck, type Repo } from "@ostree-ts/objstore";
import type { CommandModule } from "../command.js";

const fsck: CommandModule = {
  parameterString: "",
  options: [
    { long: "add-tombstones", arg: "none", description: "Add tombstones for missing commits" },
    { long: "quiet", short: "q", arg: "none", description: "Only print error messages" },
    { long: "all", short: "a", arg: "none", description: "Don't stop on first error" },
    { long: "delete", arg: "none", description: "Remove corrupted objects" },
    { long: "verify-bindings", arg: "none", description: "Verify ref bindings" },
    { long: "verify-back-refs", arg: "none", description: "Verify back-references (implies --verify-bindings)" },
  ],
  async run(inv) {
    // Every inflated payload is a fresh buffer that dies at once; with V8's young generation kept
    // at its initial size, scavenges free them often instead of letting ~25 MB pile up (same CPU).
    setFlagsFromString("--semi-space-growth-factor=1");
    // Errors propagate to main, which prints `error: <message>` and exits 1 as ostree does.
    await runFsck(inv.repo as Repo, {
      quiet: Boolean(inv.opts.quiet),
      all: Boolean(inv.opts.all),
      delete: Boolean(inv.opts.delete),
      addTombstones: Boolean(inv.opts["add-tombstones"]),
      verifyBindings: Boolean(inv.opts["verify-bindings"]),
      verifyBackRefs: Boolean(inv.opts["verify-back-refs"]),
      out: (l) => inv.out.print(`${l}\n`),
      err: (l) => process.stderr.write(`${l}\n`),
    });
  },
};
export default fsck;
