/** Base class of every error the object store throws. */
export class OstreeError extends Error {
  override name = "OstreeError";
}

/** The path is not a repository, or its config is unusable. */
export class RepoError extends OstreeError {
  override name = "RepoError";
}

/** An object the operation needs is not in the repository. */
export class ObjectNotFoundError extends OstreeError {
  override name = "ObjectNotFoundError";
  constructor(
    readonly checksum: string,
    readonly objectType: string,
    detail = "",
  ) {
    // ostree_repo_load_file words a missing content object differently from metadata.
    const what = objectType === "file" ? `Couldn't find file object '${checksum}'` : `No such metadata object ${checksum}.${objectType}`;
    super(`${what}${detail ? `: ${detail}` : ""}`);
  }
}

/** An object whose bytes do not match its name, or that cannot be parsed. */
export class CorruptObjectError extends OstreeError {
  override name = "CorruptObjectError";
  constructor(
    readonly checksum: string,
    readonly objectType: string,
    reason: string,
  ) {
    super(`Corrupted ${objectType} object ${checksum}: ${reason}`);
  }
}

/** A ref, refspec, remote or collection name that does not follow ostree's rules. */
export class InvalidNameError extends OstreeError {
  override name = "InvalidNameError";
}

/** A ref that does not exist, or a ref file whose content is not a checksum. */
export class RefError extends OstreeError {
  override name = "RefError";
}

/** Input from the user (flags, paths, trees) that cannot be committed or used. */
export class InvalidArgumentError extends OstreeError {
  override name = "InvalidArgumentError";
}

/** fsck (or a binding check) found a problem it cannot continue past; the message is what ostree prints after `error: `. */
export class FsckError extends OstreeError {
  override name = "FsckError";
}
