import { createHash } from "node:crypto";
import { InvalidNameError } from "./errors.js";

const HEX_RE = /^[0-9a-f]{64}$/;

export function isChecksum(s: string): boolean {
  return HEX_RE.test(s);
}

export function assertChecksum(s: string, what = "checksum"): string {
  if (!HEX_RE.test(s)) throw new InvalidNameError(`Invalid ${what} ${JSON.stringify(s)}: expected 64 lowercase hex characters`);
  return s;
}

export function toHex(bin: Uint8Array): string {
  return Buffer.from(bin.buffer, bin.byteOffset, bin.byteLength).toString("hex");
}

export function fromHex(hex: string): Uint8Array {
  assertChecksum(hex);
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** A 32-byte binary checksum from a GVariant `ay`, as hex; rejects other lengths. */
export function binToChecksum(bin: Uint8Array, what: string): string {
  if (bin.length !== 32) throw new InvalidNameError(`Invalid ${what}: ${bin.length}-byte checksum (expected 32)`);
  return toHex(bin);
}

export function sha256Hex(...parts: Uint8Array[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex");
}
