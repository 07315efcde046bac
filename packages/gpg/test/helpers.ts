import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function gpgAvailable(): boolean {
  return spawnSync("gpg", ["--version"]).status === 0;
}

export interface GnupgKey {
  homedir: string;
  fingerprint: string;
  keyId: string;
  publicKey: Uint8Array;
  secretKeyArmored: string;
  cleanup(): void;
}

/** A throwaway passphrase-less key in its own GnuPG home, as upstream's tests make them. */
export function makeGnupgKey(dir: string, uid = "Test Key <test@example.com>", algo = "rsa2048"): GnupgKey {
  const homedir = join(dir, "gnupg");
  mkdirSync(homedir, { recursive: true, mode: 0o700 });
  const gpg = (args: string[]) => execFileSync("gpg", ["--homedir", homedir, "--batch", "--no-tty", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  gpg(["--passphrase", "", "--quick-gen-key", uid, algo, "sign", "never"]);
  const colons = gpg(["--list-keys", "--with-colons"]).toString();
  const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(colons)![1]!;
  return {
    homedir,
    fingerprint,
    keyId: fingerprint.slice(-16),
    publicKey: new Uint8Array(gpg(["--export", fingerprint])),
    secretKeyArmored: gpg(["--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys", fingerprint]).toString(),
    cleanup: () => {
      spawnSync("gpgconf", ["--homedir", homedir, "--kill", "gpg-agent"]);
    },
  };
}

/** A small tree to commit. */
export function makeTree(dir: string): string {
  const tree = join(dir, "tree");
  mkdirSync(join(tree, "sub"), { recursive: true });
  writeFileSync(join(tree, "a"), "hello\n");
  writeFileSync(join(tree, "sub", "b"), "world\n");
  return tree;
}
