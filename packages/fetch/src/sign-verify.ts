import { readFile } from "node:fs/promises";
import type { SignEngine } from "@ostree-ts/gpg";
import type { MetadataDict } from "@ostree-ts/objstore";
import { PullError } from "./errors.js";
import type { Remote } from "./remotes.js";

/** Loaded only when a remote has sign-verify keys (see pull.ts). */
const loadGpg = () => import("@ostree-ts/gpg");

/** A `sign-verify` / `sign-verify-summary` failure (ostree's signapi errors). */
export class SignVerifyError extends PullError {
  override name = "SignVerifyError";
}

export type SignVerifiers = SignEngine[];

/**
 * One engine with the keys a remote configures for it (`verification-<type>-key`
 * inline, `verification-<type>-file` key file), as `_signapi_load_public_keys`;
 * null when neither is set and the type is optional.
 */
async function loadEngine(remote: Remote, type: string, required: boolean): Promise<SignEngine | null> {
  const { Ed25519Engine, SignError, signEngineByName } = await loadGpg();
  const key = remote.option(`verification-${type}-key`);
  const file = remote.option(`verification-${type}-file`);
  try {
    const engine = signEngineByName(type);
    if (key === undefined && file === undefined) {
      if (required) throw new SignVerifyError(`No keys found for required signapi type ${type}`);
      return null;
    }
    if (engine instanceof Ed25519Engine) {
      if (file !== undefined) await engine.loadPublicKeys({ filename: file });
      if (key !== undefined) engine.addPublicKey(key);
    } else {
      engine.setPublicKey(key ?? (await readFile(file!, "utf8")).trim());
    }
    return engine;
  } catch (err) {
    if (err instanceof SignError) throw new SignVerifyError(err.message);
    throw err;
  }
}

/**
 * Every engine with keys configured (`sign-verify=true`), as ostree's
 * `_signapi_verifiers_for_remote`: types without keys are skipped, and no
 * engine at all is an error.
 */
export async function loadSignVerifiers(remote: Remote): Promise<SignVerifiers> {
  const engines: SignEngine[] = [];
  for (const type of ["ed25519", "dummy"]) {
    const e = await loadEngine(remote, type, false);
    if (e) engines.push(e);
  }
  if (engines.length === 0) throw new SignVerifyError("No keys found for required signapi type");
  return engines;
}

/**
 * `sign-verify` / `sign-verify-summary` as ostree's `verifiers_from_config`
 * reads them: unset, empty or false is off; true/1 means every type with keys;
 * anything else is a `;` list of types, each of which must exist and have keys.
 */
export async function signVerifiersFromConfig(remote: Remote, option: "sign-verify" | "sign-verify-summary"): Promise<SignVerifiers | null> {
  const raw = remote.option(option);
  if (raw === undefined || raw === "" || raw === "false" || raw === "0") return null;
  if (raw === "true" || raw === "1") return loadSignVerifiers(remote);
  const engines: SignEngine[] = [];
  for (const type of raw.split(";").filter((t, i, all) => t !== "" || i < all.length - 1)) engines.push((await loadEngine(remote, type, true))!);
  return engines;
}

/** `_sign_verify_for_remote`: success when any engine verifies one of its signatures in `detached`. */
export async function verifyWithEngines(engines: SignVerifiers, data: Uint8Array, detached: MetadataDict | null, what: string): Promise<string> {
  const { SignError, signaturesOf } = await loadGpg();
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
