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
