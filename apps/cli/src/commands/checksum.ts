import { contentChecksum, encodeDirMeta, readXattrs, sha256Hex, type Xattrs } from "@ostree-ts/objstore";
import { lstatSync, readFileSync, readlinkSync } from "node:fs";
import { resolve } from "node:path";
import { CliError, type CommandModule } from "../command.js";

const checksum: CommandModule = {
  parameterString: "PATH",
  options: [{ long: "ignore-xattrs", arg: "none", description: "Don't include xattrs in checksum" }],
  async run(inv) {
    if (inv.args.length < 1) throw new CliError("A filename must be given");
    const path = inv.args[0]!;
    let st;
    try {
      st = lstatSync(path);
    } catch (e) {
      // ostree's two code paths (async GFile vs ostree_checksum_file_at) word it differently.
      if (inv.opts["ignore-xattrs"]) throw new CliError(`fstatat(${path}): ${errnoText(e)}`);
      throw new CliError(`Error when getting information for file “${resolve(path)}”: ${errnoText(e)}`);
    }
    const xattrs: Xattrs = inv.opts["ignore-xattrs"] ? [] : readXattrs(path);
    let csum: string;
    if (st.isDirectory()) {
      csum = sha256Hex(encodeDirMeta({ uid: st.uid, gid: st.gid, mode: st.mode, xattrs }));
    } else if (st.isSymbolicLink()) {
      csum = contentChecksum({ uid: st.uid, gid: st.gid, mode: st.mode, symlinkTarget: readlinkSync(path), xattrs });
    } else if (st.isFile()) {
      csum = contentChecksum({ uid: st.uid, gid: st.gid, mode: st.mode, symlinkTarget: "", xattrs }, new Uint8Array(readFileSync(path)));
    } else {
      throw new CliError(`Unsupported file type for ${path}`);
    }
    inv.out.print(`${csum}\n`);
  },
};

function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "ENOENT" ? "No such file or directory" : code === "EACCES" ? "Permission denied" : (e as Error).message;
}

export default checksum;
