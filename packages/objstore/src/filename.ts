/** A name that is safe as one path component, as ostree requires in dirtrees. */
export function isValidFilename(name: string): boolean {
  return name.length > 0 && name !== "." && name !== ".." && !name.includes("/") && !name.includes("\0");
}
