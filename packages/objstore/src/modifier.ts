import { InvalidArgumentError } from "./errors.js";
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from "./metadata.js";
import type { Repo } from "./repo.js";
import type { StatOverrides } from "./statoverride.js";

/** What the commit modifier sees and may change for one entry. `mode` includes the S_IFMT bits. */
export interface EntryInfo {
  uid: number;
  gid: number;
  mode: number;
}

export interface ModifierOptions {
  ownerUid?: number;
  ownerGid?: number;
  /** Default: true in bare-user-only repos (as ostree forces it there), false elsewhere. */
  canonicalPermissions?: boolean;
  noXattrs?: boolean;
  modeRoExecutables?: boolean;
  statOverride?: StatOverrides;
  skipList?: readonly string[];
  consume?: boolean;
  generateSizes?: boolean;
}

/**
 * ostree's commit modifier plus the `ostree commit` filter callback: owner
 * override, --mode-ro-executables, statoverride, skip-list, then canonical
 * permissions. Paths are absolute within the tree (`/`, `/usr/bin/foo`).
 */
export class CommitModifier {
  readonly canonical: boolean;
  readonly skipXattrs: boolean;
  /** Tar members keep their xattrs unless --no-xattrs (or bare-user-only): ostree checks only SKIP_XATTRS there. */
  readonly skipTarXattrs: boolean;
  /** True when ostree would pass a modifier at all; without one, `ref` trees are grafted unread. */
  readonly active: boolean;
  private readonly hasFilter: boolean;
  private readonly modeAdds: Map<string, number>;
  private readonly modeOverrides: Map<string, number>;
  private readonly skip: Set<string>;

  constructor(
    repo: Repo,
    private readonly o: ModifierOptions,
  ) {
    const buo = repo.mode === "bare-user-only";
    if (o.canonicalPermissions && (o.ownerUid ?? 0) > 0) throw new InvalidArgumentError("Cannot specify both --canonical-permissions and non-zero --owner-uid");
    if (o.canonicalPermissions && (o.ownerGid ?? 0) > 0) throw new InvalidArgumentError("Cannot specify both --canonical-permissions and non-zero --owner-gid");
    this.canonical = o.canonicalPermissions ?? buo;
    const disableXattrs = repo.config.getBoolean("core", "disable-xattrs", false);
    this.skipXattrs = !!o.noXattrs || this.canonical || buo || disableXattrs;
    this.skipTarXattrs = !!o.noXattrs || buo;
    this.modeAdds = new Map(o.statOverride?.adds ?? []);
    this.modeOverrides = new Map(o.statOverride?.overrides ?? []);
    this.skip = new Set(o.skipList ?? []);
    this.hasFilter =
      o.ownerUid !== undefined || o.ownerGid !== undefined || !!o.modeRoExecutables || o.statOverride !== undefined || o.skipList !== undefined;
    this.active = this.hasFilter || this.canonical || !!o.noXattrs || buo || !!o.consume || !!o.generateSizes;
  }

  /** Apply to one entry; `allow: false` means skip it (skip-list). */
  apply(path: string, info: EntryInfo): { allow: boolean; info: EntryInfo } {
    if (!this.hasFilter && !this.canonical) return { allow: true, info };
    let { uid, gid, mode } = info;
    let allow = true;
    if (this.hasFilter) {
      if (this.o.ownerUid !== undefined && this.o.ownerUid >= 0) uid = this.o.ownerUid >>> 0;
      if (this.o.ownerGid !== undefined && this.o.ownerGid >= 0) gid = this.o.ownerGid >>> 0;
      if ((mode & S_IFMT) === S_IFREG && this.o.modeRoExecutables && mode & 0o111) mode &= ~0o222;
      const add = this.modeAdds.get(path);
      if (add !== undefined) {
        mode = (mode | add) >>> 0;
        this.modeAdds.delete(path);
      } else {
        const ov = this.modeOverrides.get(path);
        // ostree leaves = entries in its table (they may match again in a later tree).
        if (ov !== undefined) mode = ((info.mode & S_IFMT) | ov) >>> 0;
      }
      if (this.skip.has(path)) {
        this.skip.delete(path);
        allow = false;
      }
    }
    if (this.canonical) {
      const fmt = info.mode & S_IFMT;
      if (fmt === S_IFREG) mode &= S_IFREG | 0o755;
      else if (fmt === S_IFDIR) mode &= S_IFDIR | 0o755;
      else if (fmt !== S_IFLNK) throw new InvalidArgumentError(`Unsupported file type for file: '${path}'`);
      uid = 0;
      gid = 0;
    }
    return { allow, info: { uid, gid, mode } };
  }

  /** ostree fails the commit when statoverride (non-`=`) or skip-list paths never matched. */
  checkUnmatched(): void {
    if (this.modeAdds.size > 0) {
      throw new UnmatchedPathsError("Unmatched statoverride paths", [...this.modeAdds.keys()]);
    }
    if (this.skip.size > 0) throw new UnmatchedPathsError("Unmatched skip-list paths", [...this.skip]);
  }
}

export class UnmatchedPathsError extends InvalidArgumentError {
  override name = "UnmatchedPathsError";
  constructor(
    message: string,
    readonly paths: string[],
  ) {
    super(`${message}: ${paths.join(", ")}`);
  }
}
