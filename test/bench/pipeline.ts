// `npm run bench`: the user-space pipeline on synthetic ring-buffer batches
// of the real record layout, against the named baseline in the same run.
// Prints numbers; asserts nothing (targets and results are in BENCHMARKS.md).
//
//   pageref:  copy a batch as the addon's drain does, decode it into columns,
//             apply every page_ref event to the hold table (full per-pfn accounting)
//   baseline: decode each record as its own protobuf message with protobufjs,
//             aggregate gets/puts/events in a JS Map

import protobuf from 'protobufjs';
import { HoldTable, RefEvent } from '../../src/holds/hold-table';
import { PfnTable } from '../../src/holds/pfn-table';
import { referenceDelta } from '../../src/holds/reference-delta';
import { EventType, isPageRefEvent } from '../../src/record/event-types';
import { RECORD_SIZE, RecordField as F } from '../../src/record/layout';
import { PointerHasher } from '../../src/record/pointer-hash';
import { RecordDecoder } from '../../src/record/record-decoder';
import { StringTable } from '../../src/record/string-table';

const BATCH_RECORDS = 8192;
const BATCHES = 256; // 2 M records
const DISTINCT_PFNS = 1_000_000;
const BASELINE_RECORDS = 300_000;
const MEMORY_PFNS = 10_000_000;

// Deterministic, so runs compare.
let seed = 0x2545f491;
function random(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
}

/** Half the events on the hottest 1 % of pages, the rest spread over all of them. */
function skewedPfn(): number {
  const page = random() < 0.5 ? Math.floor(random() * DISTINCT_PFNS * 0.01) : Math.floor(random() * DISTINCT_PFNS);
  return 0x100000 + page;
}

const TYPES = [EventType.PageRefMod, EventType.PageRefModAndTest, EventType.PageRefMod, EventType.PageRefModAndTest, EventType.PageRefSet, EventType.PageRefModUnless];

function makeBatches(): Uint8Array[] {
  const batches: Uint8Array[] = [];
  let ts = 1_000_000_000;
  for (let b = 0; b < BATCHES; b++) {
    const bytes = new Uint8Array(BATCH_RECORDS * RECORD_SIZE);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < BATCH_RECORDS; i++) {
      const at = i * RECORD_SIZE;
      const type = TYPES[Math.floor(random() * TYPES.length)];
      const pid = 1000 + Math.floor(random() * 50);
      ts += 200;
      view.setUint32(at + F.ts_ns.offset, ts % 2 ** 32, true);
      view.setUint32(at + F.ts_ns.offset + 4, Math.floor(ts / 2 ** 32), true);
      const pfn = skewedPfn();
      view.setUint32(at + F.pfn.offset, pfn, true);
      view.setUint32(at + F['page.flags'].offset, 0x40068, true);
      view.setUint32(at + F['page.mapping'].offset, 0x15a78dc1 + (pfn & 0xff) * 64, true);
      view.setUint32(at + F['page.mapping'].offset + 4, 0xffff8880, true);
      view.setUint32(at + F.pid.offset, pid, true);
      view.setUint32(at + F.tgid.offset, pid, true);
      view.setInt32(at + F.count.offset, 2, true);
      view.setInt32(at + F.val.offset, type === EventType.PageRefModAndTest ? -1 : 1, true);
      view.setInt32(at + F.ret.offset, 1, true);
      view.setInt32(at + F.stack_id.offset, Math.floor(random() * 2000), true);
      view.setUint8(at + F.type.offset, type);
      bytes.set(new TextEncoder().encode(`task-${pid % 7}`), at + F.comm.offset);
    }
    batches.push(bytes);
  }
  return batches;
}

function pagerefPipeline(batches: Uint8Array[]): { seconds: number; records: number; table: HoldTable } {
  const strings = new StringTable();
  const decoder = new RecordDecoder(strings, new PointerHasher(), 0n);
  const table = new HoldTable();
  const drained = new Uint8Array(BATCH_RECORDS * RECORD_SIZE);
  const e: RefEvent = { type: 0, pfn: 0, tsNs: 0, val: 0, ret: 0, count: 0, mapcount: 0, flags: 0, mapping: 0, stackId: 0, pid: 0, tgid: 0, comm: 0 };
  const started = process.hrtime.bigint();
  let records = 0;
  for (const batch of batches) {
    drained.set(batch); // what NativeTracer.drain() does: copy out of the ring
    const b = decoder.decode(drained, batch.length);
    for (let i = 0; i < b.length; i++) {
      if (!isPageRefEvent(b.type[i])) continue;
      e.type = b.type[i];
      e.pfn = b.pfn[i];
      e.tsNs = b.tsNs[i];
      e.val = b.val[i];
      e.ret = b.ret[i];
      e.count = b.count[i];
      e.mapcount = b.mapcount[i];
      e.flags = b.flags[i];
      e.mapping = b.mapping[i];
      e.stackId = b.stackId[i];
      e.pid = b.pid[i];
      e.tgid = b.tgid[i];
      e.comm = b.comm[i];
      table.apply(e);
    }
    records += b.length;
  }
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, records, table };
}

function baseline(batches: Uint8Array[]): { seconds: number; records: number } {
  const Record = new protobuf.Type('Record')
    .add(new protobuf.Field('type', 1, 'uint32'))
    .add(new protobuf.Field('tsNs', 2, 'uint64'))
    .add(new protobuf.Field('pfn', 3, 'uint64'))
    .add(new protobuf.Field('flags', 4, 'uint64'))
    .add(new protobuf.Field('mapping', 5, 'uint64'))
    .add(new protobuf.Field('pid', 6, 'uint32'))
    .add(new protobuf.Field('tgid', 7, 'uint32'))
    .add(new protobuf.Field('count', 8, 'sint32'))
    .add(new protobuf.Field('mapcount', 9, 'sint32'))
    .add(new protobuf.Field('val', 10, 'sint32'))
    .add(new protobuf.Field('ret', 11, 'sint32'))
    .add(new protobuf.Field('stackId', 12, 'sint32'))
    .add(new protobuf.Field('cpu', 13, 'uint32'))
    .add(new protobuf.Field('mt', 14, 'uint32'))
    .add(new protobuf.Field('comm', 15, 'string'));
  new protobuf.Root().add(Record);
  // The baseline's input: every record as its own message (encoding is not timed).
  const messages: Uint8Array[] = [];
  outer: for (const batch of batches) {
    const view = new DataView(batch.buffer, batch.byteOffset, batch.length);
    for (let at = 0; at < batch.length; at += RECORD_SIZE) {
      if (messages.length === BASELINE_RECORDS) break outer;
      messages.push(
        Record.encode({
          type: view.getUint8(at + F.type.offset),
          tsNs: view.getUint32(at, true),
          pfn: view.getUint32(at + F.pfn.offset, true),
          flags: view.getUint32(at + F['page.flags'].offset, true),
          mapping: view.getUint32(at + F['page.mapping'].offset, true),
          pid: view.getUint32(at + F.pid.offset, true),
          tgid: view.getUint32(at + F.tgid.offset, true),
          count: view.getInt32(at + F.count.offset, true),
          val: view.getInt32(at + F.val.offset, true),
          ret: view.getInt32(at + F.ret.offset, true),
          stackId: view.getInt32(at + F.stack_id.offset, true),
          comm: 'task',
        }).finish(),
      );
    }
  }
  const perPfn = new Map<number, { gets: number; puts: number; events: number }>();
  const started = process.hrtime.bigint();
  for (const message of messages) {
    const r = Record.decode(message) as unknown as { type: number; pfn: number; val: number; ret: number };
    const pfn = Number(r.pfn);
    let row = perPfn.get(pfn);
    if (!row) perPfn.set(pfn, (row = { gets: 0, puts: 0, events: 0 }));
    const delta = referenceDelta(r.type, r.val, r.ret);
    if (delta > 0) row.gets += delta;
    else row.puts -= delta;
    row.events++;
  }
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, records: messages.length };
}

function bytesPerPfn(): { holdTable: number; totalsTable: number } {
  const holds = new HoldTable();
  const totals = new PfnTable();
  const e: RefEvent = { type: EventType.PageRefMod, pfn: 0, tsNs: 0, val: 1, ret: 0, count: 2, mapcount: 1, flags: 0, mapping: 0, stackId: 1, pid: 1, tgid: 1, comm: 0 };
  for (let pfn = 0; pfn < MEMORY_PFNS; pfn++) {
    e.pfn = pfn;
    holds.apply(e);
    totals.add(pfn, 1, 0);
  }
  return { holdTable: holds.bytes / holds.size, totalsTable: totals.bytes / totals.size };
}

const batches = makeBatches();
pagerefPipeline(batches.slice(0, 16)); // warm up the JIT
const pageref = pagerefPipeline(batches);
baseline(batches.slice(0, 8));
const base = baseline(batches);
const memory = bytesPerPfn();
const result = {
  pipeline: {
    recordsPerSec: Math.round(pageref.records / pageref.seconds),
    baselineRecordsPerSec: Math.round(base.records / base.seconds),
    distinctPfns: pageref.table.size,
    bytesPerPfn: Math.round(memory.holdTable),
    totalsBytesPerPfn: Math.round(memory.totalsTable),
  },
};
if (process.argv.includes('--json')) {
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  const p = result.pipeline;
  process.stdout.write(
    [
      `pipeline: ${(p.recordsPerSec / 1e6).toFixed(2)} M records/s (drain copy, decode, hold table), ${pageref.records} records, ${p.distinctPfns} distinct pfns`,
      `baseline: ${(p.baselineRecordsPerSec / 1e6).toFixed(2)} M records/s (protobufjs per record + Map): pageref is ${(p.recordsPerSec / p.baselineRecordsPerSec).toFixed(1)}x`,
      `memory at ${MEMORY_PFNS / 1e6} M pfns: hold table ${p.bytesPerPfn} bytes/pfn, totals table ${p.totalsBytesPerPfn} bytes/pfn`,
      '',
    ].join('\n'),
  );
}
