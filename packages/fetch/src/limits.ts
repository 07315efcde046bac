/** Maximum size of one metadata file (OSTREE_MAX_METADATA_SIZE). */
export const MAX_METADATA_SIZE = 10 * 1024 * 1024;
