/** OSTree object types with the enum values ostree uses on the wire (deltas, pull). */
export enum ObjectType {
  File = 1,
  DirTree = 2,
  DirMeta = 3,
  Commit = 4,
  TombstoneCommit = 5,
  CommitMeta = 6,
  PayloadLink = 7,
  FileXattrs = 8,
  FileXattrsLink = 9,
}

const NAMES: Record<ObjectType, string> = {
  [ObjectType.File]: "file",
  [ObjectType.DirTree]: "dirtree",
  [ObjectType.DirMeta]: "dirmeta",
  [ObjectType.Commit]: "commit",
  [ObjectType.TombstoneCommit]: "tombstone-commit",
  [ObjectType.CommitMeta]: "commitmeta",
  [ObjectType.PayloadLink]: "payload-link",
  [ObjectType.FileXattrs]: "file-xattrs",
  [ObjectType.FileXattrsLink]: "file-xattrs-link",
};

const BY_NAME = new Map<string, ObjectType>(Object.entries(NAMES).map(([k, v]) => [v, Number(k) as ObjectType]));

export function objectTypeName(type: ObjectType): string {
  return NAMES[type];
}

export function objectTypeFromName(name: string): ObjectType | undefined {
  return BY_NAME.get(name);
}

/** Metadata types are stored as GVariants and named by the sha256 of their bytes (commitmeta excepted). */
export function isMetadataType(type: ObjectType): boolean {
  return type >= ObjectType.DirTree && type <= ObjectType.CommitMeta;
}

/** The `checksum.type` form ostree prints (e.g. in fsck and error messages). */
export function objectName(checksum: string, type: ObjectType): string {
  return `${checksum}.${NAMES[type]}`;
}

/** Parse `checksum.type` as ostree's `ostree_object_from_string` does. */
export function parseObjectName(s: string): { checksum: string; type: ObjectType } | undefined {
  const dot = s.indexOf(".");
  if (dot !== 64) return undefined;
  const type = BY_NAME.get(s.slice(dot + 1));
  return type === undefined ? undefined : { checksum: s.slice(0, 64), type };
}
