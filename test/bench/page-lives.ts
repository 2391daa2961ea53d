// The benchmark's synthetic ring-buffer stream, in the real record layout:
// page_ref events as pages live them (BENCHMARKS.md describes the mix).
//
//   memory   1 M distinct pfns from pfn 0x100000, in runs of 1 to 32
//            neighbours (allocated together: bulk and readahead allocations),
//            with untraced gaps between runs
//   cold     99 % of the pfns: each run is allocated (page_ref_set, count 1),
//            its pages take and drop a reference 0 to 2 times (mapping, LRU
//            batches), and 60 % of runs are freed (mod_and_test to 0). Sixteen
//            runs are live at a time, their events interleaved.
//   hot      1 % of the pfns (runs of 16: a shared library's page cache), in
//            place before tracing (no set): get (mod, or mod_unless that
//            succeeds) and put (mod_and_test) on a random hot page. Half of
//            all events.
// Deterministic, so runs compare.

import { EventType } from '../../src/record/event-types';
import { RECORD_SIZE, RecordField as F } from '../../src/record/layout';

export const BATCH_RECORDS = 8192;
export const DISTINCT_PFNS = 1_000_000;
const HOT_PFNS = DISTINCT_PFNS / 100;
const HOT_RUN = 16;
const FIRST_PFN = 0x100000;
const RUN_LENGTHS = [1, 1, 1, 1, 2, 4, 4, 8, 8, 16, 16, 32];
const LIVE_RUNS = 16;

export function pageLifeBatches(): Uint8Array[] {
  const random = xorshift(0x2545f491);
  const { cold, hot } = layout(random);
  const coldEvents = coldStream(cold, random);
  // Half of the events hot: as many hot events as cold ones, interleaved at random.
  const records = Math.ceil((2 * coldEvents.length) / BATCH_RECORDS) * BATCH_RECORDS;
  const hotCount = new Int32Array(hot.length).fill(2);
  const writer = new RecordWriter(random);
  const batches: Uint8Array[] = [];
  let coldLeft = coldEvents.length;
  let next = 0;
  for (let b = 0; b * BATCH_RECORDS < records; b++) {
    const bytes = new Uint8Array(BATCH_RECORDS * RECORD_SIZE);
    for (let i = 0; i < BATCH_RECORDS; i++) {
      const left = records - b * BATCH_RECORDS - i;
      if (random() * left < coldLeft) {
        writer.coldEvent(bytes, i, coldEvents[next++]);
        coldLeft--;
      } else {
        const page = Math.floor(random() * hot.length);
        writer.hotEvent(bytes, i, hot[page], hotCount, page);
      }
    }
    batches.push(bytes);
  }
  return batches;
}

/** The runs of pages: cold runs in allocation order (not address order), and the hot pfns. */
function layout(random: () => number): { cold: number[][]; hot: number[] } {
  const cold: number[][] = [];
  const hot: number[] = [];
  let pfn = FIRST_PFN;
  let pages = 0;
  while (pages < DISTINCT_PFNS) {
    pfn += random() < 0.5 ? 0 : 1 + Math.floor(random() * 32);
    // Hot runs spread over the whole range: one in every 200 runs or so.
    const isHot = hot.length < HOT_PFNS && random() < 0.005;
    const length = Math.min(isHot ? HOT_RUN : RUN_LENGTHS[Math.floor(random() * RUN_LENGTHS.length)], DISTINCT_PFNS - pages, isHot ? HOT_PFNS - hot.length : Infinity);
    const run: number[] = [];
    for (let k = 0; k < length; k++) run.push(pfn + k);
    if (isHot) hot.push(...run);
    else cold.push(run);
    pfn += length;
    pages += length;
  }
  for (let i = cold.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [cold[i], cold[j]] = [cold[j], cold[i]];
  }
  return { cold, hot };
}

// A cold event packed in one number: pfn * 4 + what happens.
const SET = 0;
const GET = 1;
const PUT = 2;
const FREE = 3;

/** The cold runs' lives, LIVE_RUNS at a time, events interleaved as several CPUs would. */
function coldStream(runs: number[][], random: () => number): number[] {
  const out: number[] = [];
  const live: { events: number[]; at: number }[] = [];
  let next = 0;
  while (next < runs.length || live.length > 0) {
    while (live.length < LIVE_RUNS && next < runs.length) live.push({ events: life(runs[next++], random), at: 0 });
    const pick = Math.floor(random() * live.length);
    const run = live[pick];
    out.push(run.events[run.at++]);
    if (run.at === run.events.length) {
      live[pick] = live[live.length - 1];
      live.pop();
    }
  }
  return out;
}

function life(run: number[], random: () => number): number[] {
  const events: number[] = [];
  const pairs = run.map(() => {
    const r = random();
    return r < 0.5 ? 0 : r < 0.9 ? 1 : 2;
  });
  for (const pfn of run) events.push(pfn * 4 + SET);
  for (let round = 0; round < 2; round++) {
    run.forEach((pfn, k) => {
      if (pairs[k] > round) events.push(pfn * 4 + GET, pfn * 4 + PUT);
    });
  }
  if (random() < 0.6) for (const pfn of run) events.push(pfn * 4 + FREE);
  return events;
}

/** Writes records with the fields a kernel would give them: time, task, stack, comm, flags, mapping. */
class RecordWriter {
  private clock = 1_000_000_000;
  private readonly comms = Array.from({ length: 7 }, (_, k) => new TextEncoder().encode(`task-${k}`));

  constructor(private readonly random: () => number) {}

  coldEvent(bytes: Uint8Array, i: number, event: number): void {
    const what = event % 4;
    const pfn = (event - what) / 4;
    if (what === SET) this.write(bytes, i, EventType.PageRefSet, pfn, 1, 0, 1, 0);
    else if (what === GET) this.write(bytes, i, EventType.PageRefMod, pfn, 1, 0, 2, 1);
    else if (what === PUT) this.write(bytes, i, EventType.PageRefModAndTest, pfn, -1, 0, 1, 0);
    else this.write(bytes, i, EventType.PageRefModAndTest, pfn, -1, 1, 0, 0);
  }

  hotEvent(bytes: Uint8Array, i: number, pfn: number, counts: Int32Array, page: number): void {
    const r = this.random();
    if (counts[page] > 2 && r < 0.5) this.write(bytes, i, EventType.PageRefModAndTest, pfn, -1, 0, --counts[page], 2);
    else if (r < 0.65) this.write(bytes, i, EventType.PageRefModUnless, pfn, 1, 1, ++counts[page], 2);
    else this.write(bytes, i, EventType.PageRefMod, pfn, 1, 0, ++counts[page], 2);
  }

  private write(bytes: Uint8Array, i: number, type: number, pfn: number, val: number, ret: number, count: number, mapcount: number): void {
    const view = new DataView(bytes.buffer, bytes.byteOffset + i * RECORD_SIZE, RECORD_SIZE);
    // Records from several CPUs: times advance, with small inversions between neighbours.
    this.clock += 150 + Math.floor(this.random() * 100);
    const ts = this.clock + Math.floor(this.random() * 400);
    const pid = 1000 + Math.floor(this.random() * 50);
    view.setUint32(F.ts_ns.offset, ts % 2 ** 32, true);
    view.setUint32(F.ts_ns.offset + 4, Math.floor(ts / 2 ** 32), true);
    view.setUint32(F.pfn.offset, pfn, true);
    view.setUint32(F['page.flags'].offset, 0x40068, true);
    view.setUint32(F['page.mapping'].offset, 0x15a78dc1 + (pfn & 0xff) * 64, true);
    view.setUint32(F['page.mapping'].offset + 4, 0xffff8880, true);
    view.setUint32(F.pid.offset, pid, true);
    view.setUint32(F.tgid.offset, pid, true);
    view.setInt32(F.count.offset, count, true);
    view.setInt32(F.mapcount.offset, mapcount, true);
    view.setInt32(F.val.offset, val, true);
    view.setInt32(F.ret.offset, ret, true);
    view.setInt32(F.stack_id.offset, Math.floor(this.random() * 2000), true);
    view.setUint8(F.type.offset, type);
    bytes.set(this.comms[pid % 7], i * RECORD_SIZE + F.comm.offset);
  }
}

function xorshift(seed: number): () => number {
  return () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
}
