import { OstreeError } from "@ostree-ts/objstore";

/** A checkout, diff or walk that cannot proceed; the message names the path or object at fault. */
export class CheckoutError extends OstreeError {
  override name = "CheckoutError";
  constructor(
    message: string,
    /** errno code of the underlying failure, when there was one (EEXIST, EXDEV, …). */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** The repository asked us to write somewhere we must not: outside the target, through a symlink, a bad name. */
export class UnsafePathError extends CheckoutError {
  override name = "UnsafePathError";
}

const STRERROR: Record<string, string> = {
  EEXIST: "File exists",
  ENOENT: "No such file or directory",
  ENOTDIR: "Not a directory",
  EISDIR: "Is a directory",
  EXDEV: "Invalid cross-device link",
  EPERM: "Operation not permitted",
  EACCES: "Permission denied",
  EMLINK: "Too many links",
  ENOTEMPTY: "Directory not empty",
  ENOSPC: "No space left on device",
  ELOOP: "Too many levels of symbolic links",
  EINVAL: "Invalid argument",
  ENOTSUP: "Operation not supported",
  EOPNOTSUPP: "Operation not supported",
};

export function errnoOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** `prefix: strerror` the way glnx_throw_errno_prefix words it. */
export function errnoError(prefix: string, e: unknown): CheckoutError {
  const code = errnoOf(e);
  if (code === undefined) {
    if (e instanceof OstreeError) return new CheckoutError(`${prefix}: ${e.message}`);
    return new CheckoutError(`${prefix}: ${(e as Error)?.message ?? String(e)}`);
  }
  return new CheckoutError(`${prefix}: ${STRERROR[code] ?? code}`, code);
}
