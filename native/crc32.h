// CRC-32 of capture frames (src/capture/framing.ts), as zlib computes it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pageref {

// zlib's crc32(crc, data, len): the same value, continuing from `crc`.
uint32_t Crc32(uint32_t crc, const uint8_t* data, size_t len);

// Whether Crc32 folds with carry-less multiplication on this CPU.
bool Crc32Folds();

}  // namespace pageref
