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
  return frameStart(payload.length, crc32(payload), payload);
}

/**
 * A frame's header for a payload of `payloadLength` bytes with CRC `crc`,
 * followed by `start`: the whole payload, or its first bytes when the
 * caller writes the rest itself.
 */
function frameStart(payloadLength: number, crc: number, start: Uint8Array): Buffer {
  if (payloadLength > MAX_FRAME_SIZE) throw new RangeError(`frame of ${payloadLength} bytes exceeds ${MAX_FRAME_SIZE}`);
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + start.length);
  out.writeUInt32LE(payloadLength, 0);
  out.writeUInt32LE(crc, 4);
  out.set(start, FRAME_HEADER_SIZE);
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
  return frameStart(prefix.length + records.length, recordsCrc()(records, crc32(prefix)), prefix);
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
