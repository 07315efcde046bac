/**
 * `--version` in ostree's YAML shape. Upstream's test scripts grep this list
 * (`- gpgme`, `- libarchive`, `- sign-ed25519`, ...) to decide what to test,
 * so it names only features ostree-ts really has. Add a feature here when the
 * package implementing it lands.
 */
export const FEATURES: string[] = ["gpgme", "libarchive", "sign-ed25519"];

export const OSTREE_VERSION = "2022.7";

export function versionText(): string {
  let s = `libostree:\n Version: '${OSTREE_VERSION}'\n Features:\n`;
  for (const f of FEATURES) s += `  - ${f}\n`;
  return s;
}
