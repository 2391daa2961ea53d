// The display filter of `pageref top` (the `/` prompt and --filter): what
// is shown, not what is traced. Words separated by spaces or commas:
//   START-END    pfns START <= pfn < END, as --pfn (decimal or 0x hex)
//   PFN          that one pfn
//   anything else  a comm: rows held (or, for failures, held or released)
//                by a task whose comm contains it
// A row passes when it is in any of the ranges (or there are none) and
// matches any of the comms (or there are none). An empty text clears.

import { parseInteger, parsePfnRange, UsageError } from '../cli/arguments';
import type { PfnRange } from '../native/tracer';

export interface TopFilter {
  ranges: PfnRange[];
  comms: string[];
  /** As typed, for the status line. */
  text: string;
}

export const NO_FILTER: TopFilter = { ranges: [], comms: [], text: '' };

/** Throws UsageError with one line saying what is wrong. */
export function parseFilter(text: string): TopFilter {
  const filter: TopFilter = { ranges: [], comms: [], text: text.trim() };
  for (const word of text.split(/[\s,]+/).filter((w) => w !== '')) {
    if (/^\d/.test(word) && word.includes('-')) {
      try {
        filter.ranges.push(parsePfnRange(word));
      } catch (error) {
        if (error instanceof UsageError) throw new UsageError(error.message.replace(/^--pfn: /, 'filter: '));
        throw error;
      }
    } else if (/^(0x[0-9a-f]+|\d+)$/i.test(word)) {
      const pfn = parseInteger(word, 'filter pfn');
      filter.ranges.push({ start: pfn, end: pfn + 1 });
    } else if (Buffer.byteLength(word) > 15) {
      throw new UsageError(`filter: "${word}" is longer than a comm (15 bytes)`);
    } else {
      filter.comms.push(word);
    }
  }
  return filter;
}

export function inRanges(filter: TopFilter, pfn: number): boolean {
  if (filter.ranges.length === 0) return true;
  for (const r of filter.ranges) if (pfn >= r.start && pfn < r.end) return true;
  return false;
}

export function commMatches(filter: TopFilter, comm: string): boolean {
  if (filter.comms.length === 0) return true;
  for (const c of filter.comms) if (comm.includes(c)) return true;
  return false;
}

export function isFiltered(filter: TopFilter): boolean {
  return filter.ranges.length > 0 || filter.comms.length > 0;
}
