/** Base class for every error raised by @ostree-ts/deltas. */
export class DeltaError extends Error {
  override name = "DeltaError";
}

/**
 * Malformed or hostile delta input: a bsdiff patch, a compressed part, a
 * rollsum plan. The message names what was wrong and where.
 */
export class DeltaFormatError extends DeltaError {
  override name = "DeltaFormatError";
}

/** An input exceeds a configured size cap (e.g. bsdiff's maxInputSize). */
export class DeltaLimitError extends DeltaError {
  override name = "DeltaLimitError";
}

/** An external tool (the system `xz`) failed or is missing. */
export class DeltaToolError extends DeltaError {
  override name = "DeltaToolError";
}
