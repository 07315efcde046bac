import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

export interface GnupgKey {
  homedir: string;
  fingerprint: string;
  keyId: string;
  publicKey: Uint8Array;
  secretKeyArmored: string;
  /** Stops the key's gpg-agent. */
  cleanup(): void;
}

/** A throwaway passphrase-less key in its own GnuPG home (`DIR/gnupg`), as upstream's tests make them. */
export function makeGnupgKey(dir: string, uid = "Test Key <test@example.com>", algo = "rsa2048"): GnupgKey {
  const homedir = join(dir, "gnupg");
  mkdirSync(homedir, { recursive: true, mode: 0o700 });
  const gpg = (args: string[]) => execFileSync("gpg", ["--homedir", homedir, "--batch", "--no-tty", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  gpg(["--passphrase", "", "--quick-gen-key", uid, algo, "sign", "never"]);
  const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(gpg(["--list-keys", "--with-colons"]).toString())![1]!;
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
