// What counts as the exit path in `pageref blame --json`: a busy pfn that
// exit-race held and that its exit_mmap batch released. Shared by the host
// test, which judges the captures, and the guest script, which stops
// retrying once a try shows it (run as a program: blame JSON on stdin,
// exit status 0 when found).

import { readFileSync } from 'node:fs';

export const COMM = 'exit-race';
export const EXIT_FRAMES = /^(exit_mmap|do_exit|mmput|__mmput)\+/;
export const BATCH_FRAMES = /^(tlb_finish_mmu|tlb_flush_mmu|tlb_batch_pages_flush|__tlb_batch_free_encoded_pages|free_pages_and_swap_cache|release_pages|folios_put_refs)\+/;

export interface Releaser { stack: string[]; comm: string; pid: number; refs: number; afterNs: number }
export interface Holder { stack: string[]; kind: string; comm: string; pid: number }
export interface BusyPfn { pfn: string; failures: number; count: number; mapcount: number; holders: Holder[]; releasers: Releaser[] }
export interface Blame { kernel: string; failures: number; dropped: number; truncated: string | null; busyPfns: BusyPfn[] }

/** The busy pfns held by the exiting process and released by its exit_mmap batch. */
export function exitPathPfns(b: Blame): BusyPfn[] {
  return b.busyPfns.filter(
    (p) =>
      p.holders.some((h) => h.comm === COMM) &&
      p.releasers.some((r) => r.comm === COMM && r.stack.some((f) => EXIT_FRAMES.test(f)) && r.stack.some((f) => BATCH_FRAMES.test(f))),
  );
}

if (require.main === module) {
  process.exitCode = exitPathPfns(JSON.parse(readFileSync(0, 'utf8')) as Blame).length > 0 ? 0 : 1;
}
