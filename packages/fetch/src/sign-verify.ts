import { readFile } from "node:fs/promises";
import { DummyEngine, Ed25519Engine, SignError, signaturesOf, type SignEngine } from "@ostree-ts/gpg";
import type { MetadataDict } from "@ostree-ts/objstore";
import { PullError } from "./errors.js";
import type { Remote } from "./remotes.js";

/** A `sign-verify` / `sign-verify-summary` failure (ostree's signapi errors). */
export class SignVerifyError extends PullError {}

export type SignVerifiers = SignEngine[];

/**
 * The engines a remote configures (`verification-<type>-key` inline,
 * `verification-<type>-file` key file), as ostree's
 * `_signapi_verifiers_for_remote`: types without keys are skipped, and no
 * engine at all is an error.
 */
export async function loadSignVerifiers(remote: Remote): Promise<SignVerifiers> {
  const engines: SignEngine[] = [];
  for (const type of ["ed25519", "dummy"] as const) {
    const key = remote.option(`verification-${type}-key`);
    const file = remote.option(`verification-${type}-file`);
    if (key === undefined && file === undefined) continue;
    try {
      if (type === "ed25519") {
        const e = new Ed25519Engine();
        if (file !== undefined) await e.loadPublicKeys({ filename: file });
        if (key !== undefined) e.addPublicKey(key);
        engines.push(e);
      } else {
        const e = new DummyEngine();
        e.setPublicKey(key ?? (await readFile(file!, "utf8")).trim());
        engines.push(e);
      }
    } catch (err) {
      if (err instanceof SignError) throw new SignVerifyError(err.message);
      throw err;
    }
  }
  if (engines.length === 0) throw new SignVerifyError("No keys found for required signapi type");
  return engines;
}

/** `_sign_verify_for_remote`: success when any engine verifies one of its signatures in `detached`. */
export async function verifyWithEngines(engines: SignVerifiers, data: Uint8Array, detached: MetadataDict | null, what: string): Promise<string> {
  let found = false;
  let first: Error | null = null;
  for (const e of engines) {
    const sigs = signaturesOf(detached, e.metadataKey);
    if (!sigs) continue;
    found = true;
    try {
      return await e.verify(data, sigs);
    } catch (err) {
      if (!(err instanceof SignError)) throw err;
      first ??= err;
    }
  }
  if (!found) throw new SignVerifyError(`Can't verify ${what}: No signatures found`);
  throw new SignVerifyError(`Can't verify ${what}: ${first!.message}`);
}
