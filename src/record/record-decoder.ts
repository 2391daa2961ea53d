// Decodes the ring buffer's records (struct pageref_record, bpf/pageref.h)
// into an EventBatch. This is the hot path: DataView reads at fixed offsets,
// no object or BigInt per record, strings interned through a per-thread cache.

import { allocateBatch, EventBatch, NO_PFN } from './event-batch';
import { RECORD_SIZE, RecordField as F } from './layout';
import { isCmaEvent, isPageRefEvent } from './event-types';
import { PointerHasher } from './pointer-hash';
import { StringTable } from './string-table';

const TWO_32 = 0x100000000;
const COMM_LEN = F.comm.size;

interface CommCacheEntry {
  words: [number, number, number, number];
  index: number;
}

export class RecordDecoder {
  private readonly commByPid = new Map<number, CommCacheEntry>();
  private readonly text = new TextDecoder();

  /**
   * @param monotonicBaseNs CLOCK_MONOTONIC at the start of the capture: timestamps become
   *   offsets from it, which stay exact as numbers for 104 days of capture.
   */
  constructor(
    private readonly strings: StringTable,
    /** Hashes page.mapping; null when the records' mappings are hashed already (by the addon as it drains them). */
    private readonly pointers: PointerHasher | null,
    private readonly monotonicBaseNs: bigint,
    /** Maps a kernel stack id to the capture's stack id (identity unless the source renumbers). */
    private readonly stackIdOf: (kernelStackId: number) => number = (id) => id,
  ) {}

  /** Decodes the first `bytes` bytes of `buffer` (a whole number of records). */
  decode(buffer: Uint8Array, bytes: number): EventBatch {
    if (bytes % RECORD_SIZE !== 0) {
      throw new RangeError(`record bytes ${bytes} is not a multiple of the record size ${RECORD_SIZE}`);
    }
    const n = bytes / RECORD_SIZE;
    const batch = allocateBatch(n);
    const view = new DataView(buffer.buffer, buffer.byteOffset, bytes);
    const baseHi = Number(this.monotonicBaseNs >> 32n);
    const baseLo = Number(this.monotonicBaseNs & 0xffffffffn);

    for (let i = 0, at = 0; i < n; i++, at += RECORD_SIZE) {
      const type = view.getUint8(at + F.type.offset);
      batch.type[i] = type;
      batch.tsNs[i] =
        (view.getUint32(at + 4, true) - baseHi) * TWO_32 + (view.getUint32(at, true) - baseLo);
      batch.pfn[i] = readU64(view, at + F.pfn.offset);
      const pid = view.getUint32(at + F.pid.offset, true);
      batch.pid[i] = pid;
      batch.tgid[i] = view.getUint32(at + F.tgid.offset, true);
      batch.count[i] = view.getInt32(at + F.count.offset, true);
      batch.mapcount[i] = view.getInt32(at + F.mapcount.offset, true);
      batch.val[i] = view.getInt32(at + F.val.offset, true);
      batch.ret[i] = view.getInt32(at + F.ret.offset, true);
      const stackId = view.getInt32(at + F.stack_id.offset, true);
      batch.stackId[i] = stackId >= 0 ? this.stackIdOf(stackId) : stackId;
      batch.cpu[i] = view.getUint16(at + F.cpu.offset, true);
      batch.mt[i] = view.getUint8(at + F.mt.offset);
      batch.comm[i] = this.commIndex(view, at + F.comm.offset, pid);

      const word1 = at + F['page.flags'].offset;
      const word2 = at + F['page.mapping'].offset;
      batch.flags[i] = readU64(view, word1);
      if (isPageRefEvent(type)) {
        batch.mapping[i] = this.pointers ? this.pointers.hash(view.getUint32(word2, true), view.getUint32(word2 + 4, true)) : readU64(view, word2);
      } else {
        batch.mapping[i] = readU64(view, word2);
        if (isCmaEvent(type)) batch.name[i] = this.strings.intern(this.cString(view, at + F.name.offset, F.name.size));
      }
    }
    return batch;
  }

  // A task's comm rarely changes, so compare its 16 bytes with the last seen
  // for that pid instead of building a string per record.
  private commIndex(view: DataView, at: number, pid: number): number {
    const w0 = view.getUint32(at, true);
    const w1 = view.getUint32(at + 4, true);
    const w2 = view.getUint32(at + 8, true);
    const w3 = view.getUint32(at + 12, true);
    const cached = this.commByPid.get(pid);
    if (cached && cached.words[0] === w0 && cached.words[1] === w1 && cached.words[2] === w2 && cached.words[3] === w3) {
      return cached.index;
    }
    const index = this.strings.intern(this.cString(view, at, COMM_LEN));
    if (this.commByPid.size > 65536) this.commByPid.clear();
    this.commByPid.set(pid, { words: [w0, w1, w2, w3], index });
    return index;
  }

  private cString(view: DataView, at: number, size: number): string {
    const bytes = new Uint8Array(view.buffer, view.byteOffset + at, size);
    const end = bytes.indexOf(0);
    return this.text.decode(end < 0 ? bytes : bytes.subarray(0, end));
  }
}

// pfns, masked page flags and the other 64-bit fields stay far below 2^53;
// all ones (the kernel's "no pfn") becomes NO_PFN.
function readU64(view: DataView, at: number): number {
  const lo = view.getUint32(at, true);
  const hi = view.getUint32(at + 4, true);
  if (hi === 0xffffffff && lo === 0xffffffff) return NO_PFN;
  return hi * TWO_32 + lo;
}
