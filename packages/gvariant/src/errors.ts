/** Base of every error this package throws, so callers can catch one type. */
export class GVariantError extends Error {
  override name = "GVariantError";
}

/** A type string that is not a single complete GVariant type. */
export class GVariantTypeError extends GVariantError {
  override name = "GVariantTypeError";
}

/** Serialized bytes that cannot be decoded as the requested type. */
export class GVariantDecodeError extends GVariantError {
  override name = "GVariantDecodeError";
}

/** Bytes that decode but are not in GVariant normal form. */
export class GVariantNormalFormError extends GVariantDecodeError {
  override name = "GVariantNormalFormError";
}

/** A JavaScript value that does not fit the GVariant type it is encoded as. */
export class GVariantEncodeError extends GVariantError {
  override name = "GVariantEncodeError";
}

/** A source range in parsed text, in UTF-16 code units (JavaScript string indices). */
export interface TextRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Text that g_variant_parse() would reject. `range` (and `other`, when two
 * values conflict) locate the problem as string indices; the message is
 * GLib's exactly: "start-end:reason", "start:reason" or "s1-e1,s2-e2:reason",
 * with GLib's UTF-8 byte offsets.
 */
export class GVariantParseError extends GVariantError {
  override name = "GVariantParseError";
  constructor(
    readonly reason: string,
    readonly range: TextRange,
    readonly other?: TextRange,
    text?: string,
  ) {
    super(`${formatRange(range, text)}${other ? `,${formatRange(other, text)}` : ""}:${reason}`);
  }

  /** The same error with its message's offsets counted in UTF-8 bytes of `text`. */
  withText(text: string): GVariantParseError {
    return new GVariantParseError(this.reason, this.range, this.other, text);
  }
}

const utf8 = new TextEncoder();

function formatRange(r: TextRange, text: string | undefined): string {
  const at = (i: number) => (text === undefined ? i : utf8.encode(text.slice(0, i)).length);
  return r.start === r.end ? `${at(r.start)}` : `${at(r.start)}-${at(r.end)}`;
}
