// Kernel pointers (page->mapping) must not reach a capture unless asked for
// (record --raw-pointers): they reveal where the kernel's memory is. A keyed hash keeps equal pointers equal within one
// capture, and the low two bits, which say what the mapping is
// (PAGE_MAPPING_ANON = 1, PAGE_MAPPING_MOVABLE = 2), are kept as they were.

import { randomBytes } from 'node:crypto';

export class PointerHasher {
  private readonly key: Uint32Array;

  constructor(key: Uint8Array = randomBytes(16)) {
    if (key.length < 16) throw new RangeError('pointer hash key must be 16 bytes');
    this.key = new Uint32Array(key.buffer.slice(key.byteOffset, key.byteOffset + 16));
  }

  /** A 52-bit value (exact as a JavaScript number) for the pointer hi:lo; 0 for NULL. */
  hash(lo: number, hi: number): number {
    if (lo === 0 && hi === 0) return 0;
    const a = mix32(lo ^ this.key[0], hi ^ this.key[1]);
    const b = mix32(hi ^ this.key[2], lo ^ this.key[3]);
    const low = ((a & ~3) | (lo & 3)) >>> 0;
    const high = b & 0xfffff;
    // Never 0: 0 means "no mapping".
    return high * 0x100000000 + low || 4 | (lo & 3);
  }
}

// Two rounds of a multiply-xorshift mixer (murmur3's finaliser constants).
function mix32(x: number, y: number): number {
  let h = Math.imul(x ^ (y >>> 15), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h ^ y, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
