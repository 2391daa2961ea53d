// The capture container: magic bytes, then frames of
//   u32 payload length (LE) | u32 CRC-32 of the payload (LE) | payload
// The CRC tells a frame torn by a crash from a whole one, so a reader can
// stop at the last whole frame and say the capture was cut short.

import { crc32 } from 'node:zlib';
import { loadAddon } from '../native/load-addon';

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

/**
 * The frame header and protobuf prefix of a Frame holding one RecordBlock
 * (proto/capture.proto: Frame.records = 7 { record_size = 1, records = 2 })
 * whose records are `records`: written before the records themselves, the
 * frame is what frameBytes(Frame.encode(...)) gives, without protobufjs and
 * the framing copying the records on the way (the recorder writes every
 * record it drains: 19 ms of its cost in the kernel benchmark, BENCHMARKS.md).
 */
export function recordBlockFrameHead(recordSize: number, records: Uint8Array): Buffer {
  const block = [0x08, ...varint(recordSize), 0x12, ...varint(records.length)];
  const prefix = Buffer.from([0x3a, ...varint(block.length + records.length), ...block]);
  const payloadLength = prefix.length + records.length;
  if (payloadLength > MAX_FRAME_SIZE) throw new RangeError(`frame of ${payloadLength} bytes exceeds ${MAX_FRAME_SIZE}`);
  const head = Buffer.allocUnsafe(FRAME_HEADER_SIZE + prefix.length);
  head.writeUInt32LE(payloadLength, 0);
  head.writeUInt32LE(recordsCrc()(records, crc32(prefix)), 4);
  prefix.copy(head, FRAME_HEADER_SIZE);
  return head;
}

let foldedCrc: ((bytes: Uint8Array, initial: number) => number) | undefined;

/**
 * The CRC-32 of the records: the addon's (native/crc32.cc, the same value
 * by carry-less multiplication, six times zlib's speed here), which the
 * recorder has loaded anyway; zlib's where the addon is not built.
 */
function recordsCrc(): (bytes: Uint8Array, initial: number) => number {
  if (!foldedCrc) {
    try {
      foldedCrc = loadAddon().crc32;
    } catch {
      foldedCrc = crc32;
    }
  }
  return foldedCrc;
}

function varint(value: number): number[] {
  const bytes: number[] = [];
  while (value >= 0x80) {
    bytes.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 0x80);
  }
  bytes.push(value);
  return bytes;
}
