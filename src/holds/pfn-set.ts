// A set of pfns as bits, in chunks allocated as pages are first seen: a
// long-running `pageref serve --all-pfns` counts every page of a large host
// (a JavaScript Set of 6 M numbers takes hundreds of MiB; these bits take
// 1 bit per pfn of the chunks in use, 128 KiB per million pfns).

const CHUNK_SHIFT = 20;
const CHUNK_PFNS = 1 << CHUNK_SHIFT;

export class PfnSet {
  private readonly chunks = new Map<number, Uint8Array>();
  private count = 0;

  /** Adds pfn (a non-negative integer below 2^53); returns whether it was new. */
  add(pfn: number): boolean {
    const chunkIndex = Math.floor(pfn / CHUNK_PFNS);
    let chunk = this.chunks.get(chunkIndex);
    if (!chunk) {
      chunk = new Uint8Array(CHUNK_PFNS / 8);
      this.chunks.set(chunkIndex, chunk);
    }
    const bit = pfn - chunkIndex * CHUNK_PFNS;
    const mask = 1 << (bit & 7);
    if (chunk[bit >>> 3] & mask) return false;
    chunk[bit >>> 3] |= mask;
    this.count++;
    return true;
  }

  has(pfn: number): boolean {
    const chunkIndex = Math.floor(pfn / CHUNK_PFNS);
    const chunk = this.chunks.get(chunkIndex);
    if (!chunk) return false;
    const bit = pfn - chunkIndex * CHUNK_PFNS;
    return (chunk[bit >>> 3] & (1 << (bit & 7))) !== 0;
  }

  get size(): number {
    return this.count;
  }

  /** Bytes of the bits held. */
  get bytes(): number {
    return this.chunks.size * (CHUNK_PFNS / 8);
  }
}
