// The keyed hash that replaces page.mapping pointers in records before they
// leave the addon: the same function as PointerHasher.hash in
// src/record/pointer-hash.ts (a test holds them equal), done while a record
// is copied out of the ring buffer rather than in a second pass in
// JavaScript (the recorder's second largest cost per record, measured).
#pragma once

#include <cstdint>

namespace pageref {

// Two rounds of a multiply-xorshift mixer (murmur3's finaliser constants).
inline uint32_t MixPointerWords(uint32_t x, uint32_t y) {
  uint32_t h = (x ^ (y >> 15)) * 0x85ebca6bu;
  h ^= h >> 13;
  h = (h ^ y) * 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

// A 52-bit value for `pointer` under `key`, 0 for NULL and never 0 otherwise;
// the low two bits (what kind of mapping it is) kept as they were.
inline uint64_t HashPointer(uint64_t pointer, const uint32_t key[4]) {
  if (pointer == 0) return 0;
  uint32_t lo = static_cast<uint32_t>(pointer), hi = static_cast<uint32_t>(pointer >> 32);
  uint32_t a = MixPointerWords(lo ^ key[0], hi ^ key[1]);
  uint32_t b = MixPointerWords(hi ^ key[2], lo ^ key[3]);
  uint64_t hash = static_cast<uint64_t>(b & 0xfffff) << 32 | ((a & ~3u) | (lo & 3));
  return hash != 0 ? hash : 4 | (lo & 3);
}

}  // namespace pageref
