// What kind of reference a stack takes, judged by its frames, and the frame
// that best names the code path. Migration expects a page's references from
// its mappings and the page cache (folio_expected_refs() in mm/migrate.c);
// anything else, above all a pin taken through GUP, makes it fail. So pins
// rank first, unknown references next, short-lived batching after that, and
// the references migration expects last.

export type ReferenceKind = 'pin' | 'other' | 'batch' | 'expected';

export const KIND_RANK: Record<ReferenceKind, number> = { pin: 0, other: 1, batch: 2, expected: 3 };

export const KIND_MEANING: Record<ReferenceKind, string> = {
  pin: 'an extra reference migration does not expect (GUP pin, splice)',
  other: 'a reference from code pageref does not classify',
  batch: 'a short-lived reference of a batch (LRU add, release batch)',
  expected: 'a reference migration expects (mapping, page cache)',
};

const PIN = /get_user_pages|pin_user_pages|__gup|gup_|try_grab_|follow_page|iov_iter_get_pages|iov_iter_extract|vmsplice|splice_|get_page_from_iter|grab_folio/;
const BATCH = /lru_add|folio_add_lru|folio_batch|pagevec|lru_cache_add|release_pages|free_pages_and_swap_cache|tlb_flush_mmu|tlb_finish_mmu|lru_add_drain|mlock_folio|isolate_lru/;
// An allocation's reference is its owner's: for a page in use, the mapping's or the page cache's.
const EXPECTED = /get_page_from_freelist|prep_new_page|post_alloc_hook|filemap_add_folio|add_to_page_cache|shmem_add_to_page_cache|do_anonymous_page|folio_add_new_anon_rmap|page_add_new_anon_rmap|do_set_pte|set_pte_range|wp_page_copy|do_cow_fault|do_swap_page|__read_swap_cache_async|migrate_folio|move_to_new_folio/;

/**
 * The kind of the innermost frame that names one: the code that took the
 * reference, not whatever called it. A long-term pin's fault-in allocates
 * pages and adds them to an LRU batch with get_user_pages further out; those
 * references are the mapping's and the batch's, and only the grab itself is
 * the pin.
 */
export function referenceKind(frames: readonly string[]): ReferenceKind {
  for (const frame of frames) {
    if (PIN.test(frame)) return 'pin';
    if (EXPECTED.test(frame)) return 'expected';
    if (BATCH.test(frame)) return 'batch';
  }
  return 'other';
}

// Puts whose stack says which kind of reference they drop: unpinning and
// pipe buffer release drop pins; unmapping and page cache removal drop the
// references a page's mappings and cache hold. The hold table pairs them
// with a get of that kind first (src/holds/hold-table.ts).
const RELEASES_PIN = /unpin_user_page|put_user_page|gup_put_folio|pipe_buf_release|bio_release_pages/;
const RELEASES_EXPECTED = /zap_pte_range|zap_present|unmap_page_range|exit_mmap|tlb_finish_mmu|tlb_flush_mmu|free_pages_and_swap_cache|__tlb_batch_free|filemap_remove_folio|__filemap_remove|delete_from_page_cache|truncate_inode|wp_page_copy/;

/** The kind of reference a put's stack releases, or "" when the frames do not say. */
export function releaseKind(frames: readonly string[]): ReferenceKind | '' {
  const text = frames.join(' ');
  if (RELEASES_PIN.test(text)) return 'pin';
  if (RELEASES_EXPECTED.test(text)) return 'expected';
  return '';
}

// The reference-counting helpers themselves name no culprit.
const PLUMBING = /^(__)?(page_ref|folio_ref|get_page|put_page|folio_get|folio_put|try_get_page|folio_try_get|page_cache_get|trace_|perf_|bpf_|__traceiter|__bpf)/;

/** The innermost frame that is not reference-counting plumbing. */
export function tellingFrame(frames: readonly string[]): string {
  return frames.find((frame) => !PLUMBING.test(frame)) ?? frames[0] ?? '[no stack]';
}
