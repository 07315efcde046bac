import { OstreeError } from "@ostree-ts/objstore";

/** A remote name that is not configured: ostree's `Remote "NAME" not found`. */
export class RemoteNotFoundError extends OstreeError {
  override name = "RemoteNotFoundError";
  constructor(readonly remote: string) {
    super(`Remote "${remote}" not found`);
  }
}

/** Misconfigured or unsupported remote settings. */
export class RemoteConfigError extends OstreeError {
  override name = "RemoteConfigError";
}

/** A pull failed: network, server, verification or local-store reason in the message. */
export class PullError extends OstreeError {
  override name = "PullError";
}

/** An HTTP request failed after retries; `status` is the last HTTP status (0 = no response). */
export class FetchError extends PullError {
  override name = "FetchError";
  constructor(
    message: string,
    readonly url: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Something that needs signature verification this build cannot do yet (GPG). */
export class NotSupportedError extends OstreeError {
  override name = "NotSupportedError";
}
