// Mutations of a capture file. Most keep the frame checksums right (they are
// recomputed after the payload is changed), or the reader would stop at the
// first damaged frame and the protobuf decoder and the checks behind it would
// never see the damage; some damage the container itself.

import { crc32 } from 'node:zlib';
import { FRAME_HEADER_SIZE, MAGIC, MAX_FRAME_SIZE } from '../../src/capture/framing';
import { Random } from './random';

/** The payloads of a capture's frames, in order (a torn tail is dropped). */
export function splitFrames(file: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  let at = MAGIC.length;
  while (at + FRAME_HEADER_SIZE <= file.length) {
    const length = file.readUInt32LE(at);
    if (at + FRAME_HEADER_SIZE + length > file.length) break;
    frames.push(file.subarray(at + FRAME_HEADER_SIZE, at + FRAME_HEADER_SIZE + length));
    at += FRAME_HEADER_SIZE + length;
  }
  return frames;
}

export function joinFrames(frames: Uint8Array[]): Buffer {
  const parts: Buffer[] = [MAGIC];
  for (const payload of frames) {
    const head = Buffer.alloc(FRAME_HEADER_SIZE);
    head.writeUInt32LE(payload.length, 0);
    head.writeUInt32LE(crc32(payload), 4);
    parts.push(head, Buffer.from(payload.buffer, payload.byteOffset, payload.length));
  }
  return Buffer.concat(parts);
}

/** Where a protobuf message holds tags, length prefixes and varint values. */
interface Site {
  kind: 'tag' | 'length' | 'varint';
  start: number;
  end: number;
}

function readVarint(buf: Uint8Array, at: number, end: number): { value: number; next: number } | undefined {
  let value = 0;
  for (let i = 0; i < 10 && at + i < end; i++) {
    value += (buf[at + i] & 0x7f) * 2 ** (7 * i);
    if ((buf[at + i] & 0x80) === 0) return { value, next: at + i + 1 };
  }
  return undefined;
}

/** Walks a message, and length-delimited fields that parse as messages, collecting sites; false when it does not parse. */
function walk(buf: Uint8Array, start: number, end: number, sites: Site[], depth: number): boolean {
  let at = start;
  while (at < end) {
    const tag = readVarint(buf, at, end);
    if (!tag || tag.value < 8) return false;
    sites.push({ kind: 'tag', start: at, end: tag.next });
    at = tag.next;
    const wireType = tag.value % 8;
    if (wireType === 0) {
      const v = readVarint(buf, at, end);
      if (!v) return false;
      sites.push({ kind: 'varint', start: at, end: v.next });
      at = v.next;
    } else if (wireType === 1) at += 8;
    else if (wireType === 5) at += 4;
    else if (wireType === 2) {
      const length = readVarint(buf, at, end);
      if (!length || length.next + length.value > end) return false;
      sites.push({ kind: 'length', start: at, end: length.next });
      at = length.next;
      const inner: Site[] = [];
      if (depth < 4 && length.value > 0 && walk(buf, at, at + length.value, inner, depth + 1)) sites.push(...inner);
      at += length.value;
    } else return false;
  }
  return at === end;
}

function encodeVarint(value: bigint): Buffer {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Buffer.from(out);
}

function splice(buf: Uint8Array, start: number, end: number, insert: Uint8Array): Buffer {
  return Buffer.concat([buf.subarray(0, start), insert, buf.subarray(end)]);
}

const HUGE_LENGTHS = [2n ** 31n, 2n ** 32n - 1n, 2n ** 31n - 1n, BigInt(MAX_FRAME_SIZE), 2n ** 53n + 1n, 2n ** 64n - 1n, 2n ** 35n];
const ODD_VALUES = [0n, 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n, -1n, -(2n ** 31n), 255n, 256n, 12n, 13n, 100n];

function randomBytes(rng: Random, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = rng.below(256);
  return out;
}

/** One change to one payload, its checksum to be recomputed. */
function mutatePayload(rng: Random, payload: Buffer, donor: Buffer[]): Buffer {
  const sites: Site[] = [];
  walk(payload, 0, payload.length, sites, 0);
  const of = (kind: Site['kind']) => sites.filter((s) => s.kind === kind);
  const at = rng.below(payload.length + 1);
  switch (rng.below(10)) {
    case 0: {
      if (payload.length === 0) return randomBytes(rng, 1 + rng.below(8));
      const out = Buffer.from(payload);
      out[rng.below(out.length)] ^= 1 << rng.below(8);
      return out;
    }
    case 1: {
      const out = Buffer.from(payload);
      if (out.length > 0) out[rng.below(out.length)] = rng.pick([0, 0xff, 0x80, 0x7f, rng.below(256)]);
      return out;
    }
    case 2:
      return splice(payload, at, at, randomBytes(rng, 1 + rng.below(16)));
    case 3:
      return splice(payload, at, Math.min(payload.length, at + 1 + rng.below(16)), Buffer.alloc(0));
    case 4:
      return payload.subarray(0, at);
    case 5: {
      // A length prefix that claims far more than the message holds.
      const site = rng.pick(of('length'));
      if (!site) return payload.subarray(0, at);
      const current = readVarint(payload, site.start, site.end)!.value;
      const value = rng.chance(0.3) ? BigInt(current + 1 + rng.below(4)) : rng.pick(HUGE_LENGTHS);
      return splice(payload, site.start, site.end, encodeVarint(value));
    }
    case 6: {
      // Another field number and wire type: a field read as the wrong kind, or one this version does not know.
      const site = rng.pick(of('tag'));
      if (!site) return payload;
      const field = rng.chance(0.8) ? 1 + rng.below(20) : rng.pick([2 ** 29 - 1, 19000, 0]);
      return splice(payload, site.start, site.end, encodeVarint(BigInt(field) * 8n + BigInt(rng.below(8))));
    }
    case 7: {
      const site = rng.pick(of('tag'));
      if (!site) return payload;
      const current = readVarint(payload, site.start, site.end)!.value;
      return splice(payload, site.start, site.end, encodeVarint(BigInt(current - (current % 8) + rng.below(8))));
    }
    case 8: {
      // A scalar made huge, negative (ten-byte varints) or small.
      const site = rng.pick(of('varint'));
      if (!site) return payload;
      return splice(payload, site.start, site.end, encodeVarint(rng.pick(ODD_VALUES)));
    }
    default: {
      // Bytes from another frame (another seed's frame, too) in the middle of this one.
      const other = rng.pick(donor);
      const from = rng.below(other.length + 1);
      return splice(payload, at, at, other.subarray(from, from + 1 + rng.below(64)));
    }
  }
}

/** Changes the list of frames: checksums stay right. */
function mutateFrames(rng: Random, frames: Buffer[], donor: Buffer[]): Buffer[] {
  const out = [...frames];
  const i = rng.below(out.length);
  if (rng.chance(0.6)) {
    out[i] = mutatePayload(rng, out[i] ?? Buffer.alloc(0), donor);
    return out;
  }
  switch (rng.below(6)) {
    case 0:
      out.splice(i, 0, out[i] ?? Buffer.alloc(0));
      return out;
    case 1:
      out.splice(i, 1);
      return out;
    case 2: {
      if (out.length < 2) return out;
      const j = rng.below(out.length);
      [out[i], out[j]] = [out[j], out[i]];
      return out;
    }
    case 3:
      out.splice(rng.below(out.length + 1), 0, rng.pick(donor));
      return out;
    case 4:
      // Many copies of one frame (strings and stacks defined again and again).
      out.splice(i, 0, ...new Array<Buffer>(2 + rng.below(10)).fill(out[i] ?? rng.pick(donor)));
      return out;
    default:
      out.splice(i + 1, 0, Buffer.alloc(0));
      return out;
  }
}

/** Damage to the file itself: checksums, frame lengths, the magic, cuts. */
function mutateContainer(rng: Random, file: Buffer): Buffer {
  const starts: number[] = [];
  for (let at = MAGIC.length; at + FRAME_HEADER_SIZE <= file.length; ) {
    starts.push(at);
    const length = file.readUInt32LE(at);
    at += FRAME_HEADER_SIZE + length;
  }
  const out = Buffer.from(file);
  switch (rng.below(7)) {
    case 0: {
      out[rng.below(out.length)] ^= 1 << rng.below(8);
      return out;
    }
    case 1: {
      // A frame length far beyond the file (a 2 GiB claim among them), or just past it.
      const at = rng.pick(starts) ?? MAGIC.length;
      if (at + 4 > out.length) return out;
      const remaining = out.length - at - FRAME_HEADER_SIZE;
      out.writeUInt32LE(rng.pick([0x80000000, 0xffffffff, MAX_FRAME_SIZE, MAX_FRAME_SIZE + 1, MAX_FRAME_SIZE - 1, remaining + 1, Math.max(0, remaining - 1), 0]), at);
      return out;
    }
    case 2: {
      // Cut at a frame boundary, or a few bytes either side of one.
      const at = (rng.pick(starts) ?? MAGIC.length) + rng.below(FRAME_HEADER_SIZE + 4) - 2;
      return out.subarray(0, Math.max(0, Math.min(out.length, at)));
    }
    case 3:
      return out.subarray(0, rng.below(out.length + 1));
    case 4: {
      const at = rng.below(out.length + 1);
      return Buffer.concat([out.subarray(0, at), randomBytes(rng, 1 + rng.below(16)), out.subarray(at)]);
    }
    case 5: {
      const at = rng.below(out.length);
      return Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + rng.below(16))]);
    }
    default:
      out[rng.below(MAGIC.length)] = rng.below(256);
      return out;
  }
}

/** A mutated capture: one to three changes to a seed, most of them below the container. */
export function mutateCapture(rng: Random, seed: Buffer, donors: Buffer[][]): Buffer {
  let frames = splitFrames(seed);
  // Half the inputs keep the header and a few frames only: decoding ten frames per input
  // cost more than the mutations, and a short capture reaches every frame kind as well.
  if (rng.chance(0.5)) frames = [frames[0], ...frames.slice(1).filter(() => rng.chance(0.3))];
  const donor = rng.pick(donors);
  const changes = 1 + rng.below(3);
  for (let i = 0; i < changes; i++) frames = mutateFrames(rng, frames, donor);
  const file = joinFrames(frames);
  return rng.chance(0.15) ? mutateContainer(rng, file) : file;
}
