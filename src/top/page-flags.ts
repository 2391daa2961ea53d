// Names for a record's page flags and migrate type. The BPF side masks
// page->flags to the page-flag bits (__NR_PAGEFLAGS), but which bit means
// what is `enum pageflags` of include/linux/page-flags.h, which moved between
// kernels (6.x put PG_writeback at bit 1 and PG_head at bit 6; PG_error and
// PG_slab are gone by 6.12) and whose tail depends on the configuration
// (PG_uncached, PG_hwpoison, PG_young/PG_idle, PG_arch_2). So the names are
// a table per kernel release (major.minor), read from the BTF of the x86_64
// test kernels in ../shared/vm/kernels (`bpftool btf dump file vmlinux.btf`,
// enum pageflags); a bit the table does not name, or any bit of a kernel the
// table does not know, is shown as its number (`bit23`). Reading the running
// kernel's BTF would be exact everywhere, but a replayed capture comes from
// another machine, and its header keeps only the release.

/** enum pageflags by bit, without the PG_ prefix. */
const PAGE_FLAGS: Record<string, readonly string[]> = {
  // 6.1.192 x86_64 (CONFIG_MMU, ARCH_USES_PG_UNCACHED, 64BIT; no MEMORY_FAILURE, no PAGE_IDLE_FLAG).
  '6.1': [
    'locked', 'referenced', 'uptodate', 'dirty', 'lru', 'active', 'workingset', 'waiters',
    'error', 'slab', 'owner_priv_1', 'arch_1', 'reserved', 'private', 'private_2', 'writeback',
    'head', 'mappedtodisk', 'reclaim', 'swapbacked', 'unevictable', 'mlocked', 'uncached', 'arch_2',
  ],
  // 6.12.117 x86_64 (CONFIG_MMU, ARCH_USES_PG_ARCH_2; no MEMORY_FAILURE, no PAGE_IDLE_FLAG).
  '6.12': [
    'locked', 'writeback', 'referenced', 'uptodate', 'dirty', 'lru', 'head', 'waiters',
    'active', 'workingset', 'owner_priv_1', 'owner_2', 'arch_1', 'reserved', 'private', 'private_2',
    'reclaim', 'swapbacked', 'unevictable', 'mlocked', 'arch_2',
  ],
};

/** The releases (major.minor) with a flag table. */
export const FLAG_TABLE_RELEASES = Object.keys(PAGE_FLAGS);

/** The flag table for a kernel release such as "6.1.192" or "6.12.117-amd64", or undefined. */
export function pageFlagTable(kernelRelease: string): readonly string[] | undefined {
  const match = /^(\d+)\.(\d+)/.exec(kernelRelease);
  return match ? PAGE_FLAGS[`${match[1]}.${match[2]}`] : undefined;
}

/** The set bits of `flags` (up to bit 52) as names, lowest bit first; unnamed bits as "bitN". */
export function pageFlagNames(flags: number, table: readonly string[] | undefined): string[] {
  const names: string[] = [];
  let rest = flags;
  for (let bit = 0; rest > 0 && bit < 53; bit++) {
    const value = 2 ** bit;
    if (Math.floor(rest / value) % 2 === 1) {
      names.push(table?.[bit] ?? `bit${bit}`);
      rest -= value;
    }
  }
  return names;
}

/**
 * enum migratetype, the same in 6.1 and 6.12 with CONFIG_CMA and
 * CONFIG_MEMORY_ISOLATION (MIGRATE_HIGHATOMIC is MIGRATE_PCPTYPES, 3).
 */
const MIGRATE_TYPES = ['unmovable', 'movable', 'reclaimable', 'highatomic', 'cma', 'isolate'];

export function migrateTypeName(mt: number): string {
  return MIGRATE_TYPES[mt] ?? `mt${mt}`;
}
