// What a capture could not see, by how it was recorded: sampling, per-pfn
// totals instead of records, stacks only where armed. Report and blame say
// so in the same words, so that nobody takes a partial view for a whole one.

import type { CaptureHeader, KernelCounters } from '../capture/schema';

/** pfns a bounded per-pfn table (--max-pfns) forgot to stay within its bound, and the events they carried. */
export interface EvictedPfns {
  /** The bound the table was held to. */
  maxPfns: number;
  pfns: number;
  events: number;
}

/** The sentence for evictions, or none when nothing was evicted. */
export function evictionLimit(evicted: EvictedPfns): string[] {
  if (evicted.pfns === 0) return [];
  return [`evicted: ${evicted.pfns} pfns (${evicted.events} events) were forgotten to keep per-pfn state within --max-pfns ${evicted.maxPfns}, the least recently touched first; their totals are missing below`];
}

export interface Sampling {
  /** --sample-pfn: 1 in N pfns kept (1: all). */
  pfn: number;
  /** --sample-events: 1 in N events kept (1: all). */
  events: number;
  /** What counts of kept events are multiplied by to estimate all events. */
  scale: number;
  /** True when counts are estimates, not counts. */
  estimated: boolean;
}

export function samplingOf(header: CaptureHeader | undefined): Sampling {
  const pfn = Math.max(1, header?.options?.samplePfn ?? 1);
  const events = Math.max(1, header?.options?.sampleEvents ?? 1);
  return { pfn, events, scale: pfn * events, estimated: pfn * events > 1 };
}

/** One sentence per limit of the capture, for people; [] when it saw everything. */
export function captureLimits(header: CaptureHeader | undefined, counters: KernelCounters | undefined): string[] {
  const options = header?.options;
  if (!options) return [];
  const limits: string[] = [];
  const sampling = samplingOf(header);
  if (sampling.pfn > 1) limits.push(`sampled: the page_ref events of 1 in ${sampling.pfn} pfns (chosen by a hash of the pfn), each kept page's history whole; page counts are of the sample`);
  if (sampling.events > 1) limits.push(`sampled: 1 in ${sampling.events} page_ref events; histories have gaps, so per-page references are not exact`);
  if (sampling.estimated) limits.push(`estimates for all pages and events are the sample's counts times ${sampling.scale}`);
  if (options.aggregateSlots > 0) {
    limits.push('aggregated: page_ref events were summed per pfn in the kernel (--aggregate); there are no per-event records' + (options.stacksMode === 'armed' ? ' except for armed pages' : ''));
  }
  if (options.stacksMode === 'armed') limits.push('armed: a page has records and stacks only from the first failed isolation that covered it; earlier gets were not recorded');
  if (options.stacksMode === 'sampled') limits.push(`stacks on the records of 1 in ${options.stackSample} pfns only`);
  if (options.pfnRanges.length > 0) limits.push(`only pfns in ${options.pfnRanges.map((r) => `0x${r.start.toString(16)}-0x${r.end.toString(16)}`).join(', ')}${options.cmaAreas.length > 0 ? ' (the CMA areas)' : ''}`);
  if ((options.untracedTgid ?? 0) > 0) limits.push(`not traced: the recorder's own page_ref events (pid ${options.untracedTgid}), counted as filtered`);
  const overflow = (counters?.aggregateOverflow ?? []).reduce((a, b) => a + b, 0);
  if (overflow > 0) limits.push(`${overflow} page_ref events fell on pfns beyond --max-pfns and are only counted`);
  return limits;
}
