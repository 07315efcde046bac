import { OstreeError } from "@ostree-ts/objstore";

/** ostree's OstreeGpgError codes. */
export type GpgErrorCode = "no-signature" | "invalid-signature" | "missing-key" | "expired-signature" | "expired-key" | "revoked-key";

/** A GPG verification or signing failure; `code` follows OstreeGpgError. */
export class GpgError extends OstreeError {
  override name = "GpgError";
  constructor(
    message: string,
    readonly code: GpgErrorCode = "invalid-signature",
  ) {
    super(message);
  }
}

/** Key material that cannot be read (keyring file, armored block, key id not found). */
export class GpgKeyError extends OstreeError {
  override name = "GpgKeyError";
}

/** A failure of the `ostree sign` framework (ed25519, dummy): bad keys, no valid signature. */
export class SignError extends OstreeError {
  override name = "SignError";
}
