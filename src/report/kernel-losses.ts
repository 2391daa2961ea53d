// What the kernel counted but did not hand over as records, summed over
// event types. Every command shows these (record, report, blame, top,
// serve), so that a partial view is never taken for a whole one.

import type { KernelCounters } from '../capture/schema';

export interface KernelLosses {
  /** Records lost because the ring buffer was full. */
  dropped: number;
  /** Records without their stack: the stack map was full, or a hash collision (-EEXIST) kept the stack out. */
  stackLost: number;
  /** Events --sample-pfn or --sample-events left out, in the kernel. */
  sampledOut: number;
  /** --aggregate: page_ref events on pfns beyond the kernel's slots (--max-pfns), only counted. */
  aggregateOverflow: number;
}

/** The losses in `counters`; all 0 before the first counters (and for arrays older captures lack). */
export function kernelLosses(counters: KernelCounters | undefined): KernelLosses {
  const sum = (values: number[] | undefined) => (values ?? []).reduce((a, b) => a + b, 0);
  return {
    dropped: sum(counters?.dropped),
    stackLost: sum(counters?.stackLost),
    sampledOut: sum(counters?.sampledOut),
    aggregateOverflow: sum(counters?.aggregateOverflow),
  };
}
