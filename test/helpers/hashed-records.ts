// Record blocks as live recording writes them: mappings hashed in place.

import { isPageRefEvent } from '../../src/record/event-types';
import { RECORD_SIZE, RecordField as F } from '../../src/record/layout';
import type { PointerHasher } from '../../src/record/pointer-hash';

/**
 * What the addon does to live records as it drains them (hashPointers,
 * native/pointer-hash.h), for records a test makes: replaces page.mapping
 * of every page_ref record in the first `bytes` bytes of `records` (struct
 * pageref_record, bpf/pageref.h) by its keyed hash, in place, as a
 * little-endian u64.
 */
export function hashMappingsInPlace(records: Uint8Array, bytes: number, hasher: PointerHasher): void {
  const view = new DataView(records.buffer, records.byteOffset, bytes);
  const at = F['page.mapping'].offset;
  for (let offset = 0; offset + RECORD_SIZE <= bytes; offset += RECORD_SIZE) {
    if (!isPageRefEvent(view.getUint8(offset + F.type.offset))) continue;
    const hash = hasher.hash(view.getUint32(offset + at, true), view.getUint32(offset + at + 4, true));
    view.setUint32(offset + at, hash % 0x100000000, true);
    view.setUint32(offset + at + 4, Math.floor(hash / 0x100000000), true);
  }
}
