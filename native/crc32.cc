// CRC-32 (the IEEE polynomial, bit-reflected, as zlib and the capture
// format have it) by folding 16 bytes at a time with carry-less
// multiplication (PCLMULQDQ), after Gopal et al., "Fast CRC Computation for
// Generic Polynomials Using PCLMULQDQ Instruction" (Intel, 2009).
//
// Why: the recorder checksums every record it writes, and zlib's CRC-32
// (about 3 GB/s here) was the largest single cost of the recorder in a
// profile of the kernel benchmark: 45 % of its CPU time. Folding takes a few
// instructions per 64 bytes instead of a few per byte. Lengths under 64
// bytes, the tail under 16, and CPUs without PCLMULQDQ go to zlib.

#include "crc32.h"

#include <zlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace pageref {

#if defined(__x86_64__)
namespace {

// x^n mod P(x) for the fold distances, bit-reflected and shifted by one as
// the reflected algorithm wants them (the paper's k1..k6), and the Barrett
// constants: P(x) itself and floor(x^64 / P(x)).
constexpr uint64_t kFold512Low = 0x154442bd4;   // x^(4*128+32) mod P
constexpr uint64_t kFold512High = 0x1c6e41596;  // x^(4*128-32) mod P
constexpr uint64_t kFold128Low = 0x1751997d0;   // x^(128+32) mod P
constexpr uint64_t kFold128High = 0x0ccaa009e;  // x^(128-32) mod P
constexpr uint64_t kFold64 = 0x163cd6124;       // x^64 mod P
constexpr uint64_t kPoly = 0x1db710641;         // P(x), reflected
constexpr uint64_t kBarrett = 0x1f7011641;      // floor(x^64 / P(x)), reflected

#define PCLMUL_TARGET __attribute__((target("pclmul,sse4.1")))

// Multiplies each half of `x` by its constant and adds (xors) `next`: the
// 128 bits of x move forward by the distance the constants stand for.
PCLMUL_TARGET inline __m128i Fold(__m128i x, __m128i constants, __m128i next) {
  __m128i low = _mm_clmulepi64_si128(x, constants, 0x00);
  __m128i high = _mm_clmulepi64_si128(x, constants, 0x11);
  return _mm_xor_si128(_mm_xor_si128(low, high), next);
}

PCLMUL_TARGET inline __m128i Load(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// The CRC register (not inverted) after `len` bytes, len >= 64 and a multiple of 16.
PCLMUL_TARGET uint32_t FoldedCrc(uint32_t crc, const uint8_t* p, size_t len) {
  const __m128i by512 = _mm_set_epi64x(kFold512High, kFold512Low);
  const __m128i by128 = _mm_set_epi64x(kFold128High, kFold128Low);
  __m128i x0 = _mm_xor_si128(Load(p), _mm_cvtsi32_si128(static_cast<int>(crc)));
  __m128i x1 = Load(p + 16), x2 = Load(p + 32), x3 = Load(p + 48);
  p += 64;
  len -= 64;
  // Four lanes in step, each folded over the 64 bytes that follow.
  for (; len >= 64; p += 64, len -= 64) {
    x0 = Fold(x0, by512, Load(p));
    x1 = Fold(x1, by512, Load(p + 16));
    x2 = Fold(x2, by512, Load(p + 32));
    x3 = Fold(x3, by512, Load(p + 48));
  }
  // The lanes into one, then the rest 16 bytes at a time.
  x0 = Fold(x0, by128, x1);
  x0 = Fold(x0, by128, x2);
  x0 = Fold(x0, by128, x3);
  for (; len >= 16; p += 16, len -= 16) x0 = Fold(x0, by128, Load(p));

  // 128 bits to 64: the low half, moved 64 bits on (times x^(128-32) mod P), onto the high half.
  const __m128i low32 = _mm_set_epi32(0, 0, 0, -1);
  x0 = _mm_xor_si128(_mm_srli_si128(x0, 8), _mm_clmulepi64_si128(by128, x0, 0x01));
  // 64 bits to 32 more, with the 32 zero bits a CRC appends.
  x0 = _mm_xor_si128(_mm_srli_si128(x0, 4),
                     _mm_clmulepi64_si128(_mm_and_si128(x0, low32), _mm_set_epi64x(0, kFold64), 0x00));
  // Barrett reduction of the remaining 64 bits to the 32-bit remainder.
  const __m128i barrett = _mm_set_epi64x(kBarrett, kPoly);
  __m128i t = _mm_and_si128(_mm_clmulepi64_si128(_mm_and_si128(x0, low32), barrett, 0x10), low32);
  t = _mm_clmulepi64_si128(t, barrett, 0x00);
  return static_cast<uint32_t>(_mm_extract_epi32(_mm_xor_si128(x0, t), 1));
}

bool CpuFolds() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
}

const bool kCpuFolds = CpuFolds();

}  // namespace

bool Crc32Folds() { return kCpuFolds; }

uint32_t Crc32(uint32_t crc, const uint8_t* data, size_t len) {
  if (kCpuFolds && len >= 64) {
    size_t folded = len & ~static_cast<size_t>(15);
    // zlib's convention: the register is the complement of the value.
    crc = ~FoldedCrc(~crc, data, folded);
    data += folded;
    len -= folded;
  }
  return static_cast<uint32_t>(crc32_z(crc, data, len));
}

#else

bool Crc32Folds() { return false; }

uint32_t Crc32(uint32_t crc, const uint8_t* data, size_t len) {
  return static_cast<uint32_t>(crc32_z(crc, data, len));
}

#endif

}  // namespace pageref
