/**
 * JavaScript shapes of GVariant values:
 * - `b` boolean; `y n q i u h d` number; `x t` bigint; `s o g` string;
 * - `ay` Uint8Array (decoding returns a view into the input, not a copy);
 * - other arrays: Value[]; tuples: Value[]; dict entries `{kv}`: [key, value];
 * - `mT`: null for Nothing, the value for Just; when T is itself a maybe,
 *   Just is wrapped as `{ just: value }` so Just(Nothing) stays distinct;
 * - `v`: a Variant `{ type, value }`.
 */
export type Value =
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | null
  | Variant
  | Just
  | readonly Value[];

export interface Variant {
  readonly type: string;
  readonly value: Value;
}

export interface Just {
  readonly just: Value;
}

export type ByteOrder = "le" | "be";

export function variant(type: string, value: Value): Variant {
  return { type, value };
}

export function isVariant(v: unknown): v is Variant {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && "type" in v && "value" in v;
}

/** Look a key up in a decoded `a{sv}` (first match, as GLib's lookup does). */
export function lookup(dict: readonly Value[], key: string): Variant | undefined {
  for (const entry of dict) {
    const pair = entry as readonly Value[];
    if (pair[0] === key) return pair[1] as Variant;
  }
  return undefined;
}
