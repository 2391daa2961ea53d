// What a capture reveals beyond the default, in the words report and blame
// both use, so that a file with kernel addresses is not passed on unaware.

/** Said of a capture recorded with --raw-pointers (Header.raw_pointers). */
export const RAW_POINTERS_WARNING =
  'this capture holds raw kernel pointers (recorded with --raw-pointers: page->mapping is not hashed), which reveal where kernel memory is (KASLR); share it only where that is acceptable';
