// What the SIGKILL tests check in a capture left by a killed process, on the
// host (pageref import) and in the VM (pageref record).

import { crc32 } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { replayCapture, ReplayResult } from '../../src/capture/capture-reader';

/**
 * The container walked on its own, without the reader: how many whole
 * frames (length, CRC and payload all there and matching) the file holds
 * from its start, and how many bytes follow the last of them. The oracle for
 * "every whole frame is read back": a reader that stopped early, or read a
 * torn frame as whole, disagrees with it.
 */
export function walkFrames(path: string): { magic: boolean; frames: number; wholeBytes: number; tailBytes: number } {
  const bytes = readFileSync(path);
  const magic = bytes.subarray(0, 8).toString('latin1') === 'PAGEREF\n';
  let at = 8;
  let frames = 0;
  while (magic && at + 8 <= bytes.length) {
    const length = bytes.readUInt32LE(at);
    const end = at + 8 + length;
    if (end > bytes.length || crc32(bytes.subarray(at + 8, end)) !== bytes.readUInt32LE(at + 4)) break;
    frames++;
    at = end;
  }
  return { magic, frames, wholeBytes: at, tailBytes: bytes.length - at };
}

export interface ReadBack extends ReplayResult {
  /** One line per event, in capture order: every column but the keyed mapping hash (a new key per capture). */
  rows: string[];
}

/** Reads a capture to its end (or its cut) into comparable rows. */
export function readBack(path: string): ReadBack {
  const rows: string[] = [];
  const stacks = new Map<number, string>();
  const result = replayCapture(path, {
    header: () => {},
    stacks: (entries) => entries.forEach((s) => stacks.set(s.id, s.frames.join('<'))),
    events: (b, strings) => {
      for (let i = 0; i < b.length; i++) {
        const mapping = b.mapping[i];
        rows.push(
          [
            b.type[i], b.tsNs[i], b.pfn[i], b.flags[i], mapping === 0 ? 'null' : `ptr${mapping % 4}`, b.count[i], b.mapcount[i], b.val[i], b.ret[i],
            b.pid[i], b.tgid[i], b.cpu[i], b.mt[i], strings.get(b.comm[i]), strings.get(b.name[i]), b.stackId[i] < 0 ? b.stackId[i] : stacks.get(b.stackId[i]) ?? `missing stack ${b.stackId[i]}`,
          ].join(' '),
        );
      }
    },
    counters: () => {},
    end: () => {},
  });
  return { ...result, rows };
}
