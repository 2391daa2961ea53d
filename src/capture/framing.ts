// The capture container: magic bytes, then frames of
//   u32 payload length (LE) | u32 CRC-32 of the payload (LE) | payload
// The CRC tells a frame torn by a crash from a whole one, so a reader can
// stop at the last whole frame and say the capture was cut short.

import { crc32 } from 'node:zlib';

export const MAGIC = Buffer.from('PAGEREF\n', 'latin1');
export const FRAME_HEADER_SIZE = 8;
/** Larger frames are refused as corrupt rather than allocated. */
export const MAX_FRAME_SIZE = 64 << 20;

export function frameBytes(payload: Uint8Array): Buffer {
  if (payload.length > MAX_FRAME_SIZE) throw new RangeError(`frame of ${payload.length} bytes exceeds ${MAX_FRAME_SIZE}`);
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt32LE(crc32(payload), 4);
  out.set(payload, FRAME_HEADER_SIZE);
  return out;
}

export function payloadCrc(payload: Uint8Array): number {
  return crc32(payload);
}
