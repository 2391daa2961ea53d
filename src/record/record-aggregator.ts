// The fused hot path: page_ref records straight from the drained ring-buffer
// bytes into per-pfn counters, with no EventBatch in between. Decoding a
// batch into columns first (record-decoder.ts) costs an allocation and a
// write and read of every field; the counters need eight of them.
//
// It gives the same numbers as decoding with RecordDecoder and adding each
// page_ref event to PfnCounters (test/pfn-counters.test.ts checks that).

import { PfnCounters } from '../holds/pfn-counters';
import { referenceDelta } from '../holds/reference-delta';
import { isPageRefEvent } from './event-types';
import { RECORD_SIZE, RecordField as F } from './layout';

const TWO_32 = 0x100000000;

// Positions in 32-bit words of a record (little-endian, as layout.ts).
const RECORD_WORDS = RECORD_SIZE / 4;
const TS_LO = F.ts_ns.offset / 4;
const TS_HI = TS_LO + 1;
const PFN_LO = F.pfn.offset / 4;
const PFN_HI = PFN_LO + 1;
const COUNT = F.count.offset / 4;
const MAPCOUNT = F.mapcount.offset / 4;
const VAL = F.val.offset / 4;
const RET = F.ret.offset / 4;
const TYPE_WORD = F.type.offset >> 2;
const TYPE_SHIFT = (F.type.offset & 3) * 8;

/**
 * Applies the page_ref records among the first `byteLength` bytes of `bytes`
 * (whole records; `bytes.byteOffset` a multiple of 4, as drained buffers
 * are) to `counters`, with times as offsets from `monotonicBaseNs` like
 * RecordDecoder's. Returns how many records were something else (isolation,
 * CMA): they are left for RecordDecoder, and the batch needs decoding only
 * when this is not 0.
 */
export function aggregateRecords(bytes: Uint8Array, byteLength: number, counters: PfnCounters, monotonicBaseNs: bigint): number {
  if (byteLength % RECORD_SIZE !== 0 || byteLength > bytes.length) {
    throw new RangeError(`record bytes ${byteLength} is not a multiple of the record size ${RECORD_SIZE} within ${bytes.length} bytes`);
  }
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, byteLength / 4);
  const baseHi = Number(monotonicBaseNs >> 32n);
  const baseLo = Number(monotonicBaseNs & 0xffffffffn);
  let others = 0;
  for (let at = 0; at < words.length; at += RECORD_WORDS) {
    const type = (words[at + TYPE_WORD] >>> TYPE_SHIFT) & 0xff;
    if (!isPageRefEvent(type)) {
      others++;
      continue;
    }
    // The same expression as RecordDecoder's, so times are equal to the bit.
    const tsNs = ((words[at + TS_HI] >>> 0) - baseHi) * TWO_32 + ((words[at + TS_LO] >>> 0) - baseLo);
    counters.addWords(
      words[at + PFN_LO] >>> 0,
      words[at + PFN_HI] >>> 0,
      referenceDelta(type, words[at + VAL], words[at + RET]),
      words[at + COUNT],
      words[at + MAPCOUNT],
      tsNs,
    );
  }
  return others;
}
