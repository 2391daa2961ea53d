// Finds kernel addresses anywhere in what a capture holds: every number and
// every string that reading it yields (header, stacks, counters, per-pfn
// totals, every column of every event, the strings events refer to). A
// capture must hold none unless it was recorded with --raw-pointers.

import { replayCapture } from '../../src/capture/capture-reader';
import type { StringTable } from '../../src/record/string-table';

// The kernel's half of the address space begins at 0xffff800000000000 with
// 4-level page tables and at 0xff00000000000000 with 5-level ones (QEMU's
// -cpu max has LA57). As a double the bound is exact.
const KERNEL_SPACE_START = 0xff00000000000000;
// An address written as text: "ffff8881...", "0xff11...", 16 hex digits from ff.
const ADDRESS_TEXT = /(?:^|[^0-9a-f])(?:0x)?ff[0-9a-f]{14}(?![0-9a-f])/i;

function isKernelAddress(value: unknown): boolean {
  if (typeof value === 'number') return value >= KERNEL_SPACE_START;
  if (typeof value === 'bigint') return value >= BigInt('0xff00000000000000');
  if (typeof value === 'string') return ADDRESS_TEXT.test(value);
  return false;
}

/** Where each kernel address found in `value` sits ("events.mapping[12]: 1.8e19"), at most `limit`. */
function addressesIn(value: unknown, where: string, found: string[], limit: number): void {
  if (found.length >= limit) return;
  if (isKernelAddress(value)) {
    found.push(`${where}: ${String(value)}`);
  } else if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const values = value as unknown as ArrayLike<number | bigint>;
    for (let i = 0; i < values.length && found.length < limit; i++) addressesIn(values[i], `${where}[${i}]`, found, limit);
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => addressesIn(item, `${where}[${i}]`, found, limit));
  } else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) addressesIn(item, `${where}.${key}`, found, limit);
  }
}

/** The kernel addresses a capture yields when read, as "where: value" lines (at most `limit`). */
export function kernelAddressesInCapture(path: string, limit = 5): string[] {
  const found: string[] = [];
  let strings: StringTable | undefined;
  replayCapture(path, {
    header: (header) => addressesIn(header, 'header', found, limit),
    stacks: (stacks) => addressesIn(stacks, 'stacks', found, limit),
    counters: (counters) => addressesIn(counters, 'counters', found, limit),
    pfnCounts: (totals) => addressesIn(totals, 'pfnCounts', found, limit),
    events: (batch, table) => {
      addressesIn(batch, 'events', found, limit);
      strings = table;
    },
    end: (end) => addressesIn(end, 'end', found, limit),
  });
  // Comms and CMA area names, which the event columns only index.
  if (strings) {
    addressesIn(strings.strings, 'strings', found, limit);
  }
  return found;
}
