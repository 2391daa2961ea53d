import test from 'ava';
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync, truncateSync } from 'node:fs';
import { CaptureError, replayCapture } from '../src/capture/capture-reader';
import { CaptureWriter } from '../src/capture/capture-writer';
import { frameBytes, MAX_FRAME_SIZE, recordBlockFrameHead } from '../src/capture/framing';
import { captureSchema } from '../src/capture/schema';
import { RECORD_SIZE } from '../src/record/layout';
import { CaptureSummary, reportJson } from '../src/report/capture-summary';
import { EventType } from '../src/record/event-types';
import { rawRecord } from './helpers/records';
import { PointerHasher } from '../src/record/pointer-hash';
import { hashMappingsInPlace } from './helpers/hashed-records';
import { RecordDecoder } from '../src/record/record-decoder';
import { StringTable } from '../src/record/string-table';
import { tempPath, testHeader, writeCapture } from './helpers/capture';
import { walkFrames } from './helpers/cut-capture';

function sampleRecords() {
  const records: Buffer[] = [];
  for (let i = 0; i < 10; i++) {
    records.push(rawRecord({ type: EventType.PageRefMod, tsNs: 1_000_000_000n + BigInt(i * 1000), pfn: 0x1000n + BigInt(i % 3), val: 1, count: 2, stackId: 1, comm: i % 2 ? 'vmsplice-hold' : 'bash', pid: 100 + (i % 2), tgid: 100 + (i % 2) }));
  }
  records.push(rawRecord({ type: EventType.PageRefModAndTest, tsNs: 1_000_020_000n, pfn: 0x1000n, val: -1, ret: 0, stackId: 2, comm: 'bash' }));
  records.push(rawRecord({ type: EventType.TestPagesIsolated, tsNs: 1_000_030_000n, pfn: 0x1000n, word1: 0x1400n, word2: 0x1001n }));
  return records;
}

test('a capture reads back event for event, with strings, stacks, counters and trailer', (t) => {
  const path = tempPath('round.pgref');
  writeCapture(path, sampleRecords());
  const summary = new CaptureSummary();
  const seen: { comms: string[]; ts: number[]; stacks: number } = { comms: [], ts: [], stacks: 0 };
  const result = replayCapture(path, {
    header: (h) => summary.header(h),
    stacks: (s) => {
      seen.stacks += s.length;
    },
    events: (batch, strings) => {
      summary.events(batch, strings);
      for (let i = 0; i < batch.length; i++) {
        seen.comms.push(strings.get(batch.comm[i]));
        seen.ts.push(batch.tsNs[i]);
      }
    },
    counters: (c) => summary.counters(c),
    end: (e) => summary.end(e),
  });
  t.is(result.truncated, undefined);
  t.is(seen.stacks, 2);
  t.deepEqual(seen.comms.slice(0, 4), ['bash', 'vmsplice-hold', 'bash', 'vmsplice-hold']);
  t.deepEqual(seen.ts.slice(0, 3), [0, 1000, 2000]);
  const report = reportJson(summary, 5);
  t.is(report.events.page_ref_mod, 10);
  t.is(report.events.page_ref_mod_and_test, 1);
  t.is(report.events.test_pages_isolated, 1);
  t.is(report.dropped, 2);
  t.is(report.pfns, 3);
  t.is(report.isolation.failures, 1);
  t.deepEqual(report.isolation.busyPfns, [{ pfn: '0x1001', failures: 1 }]);
  // Equal net references: the page with more events ranks first.
  t.deepEqual(report.top[0], { pfn: '0x1000', gets: 4, puts: 1, net: 3, events: 5 });
  t.deepEqual(report.top[1], { pfn: '0x1001', gets: 3, puts: 0, net: 3, events: 3 });
  t.is(report.capture.stopReason, 'SIGINT');
  t.is(report.kernel.release, '6.1.192');
});

test('a capture is created 0600 and an existing file is not overwritten without force', (t) => {
  const path = tempPath('mode.pgref');
  writeCapture(path, sampleRecords());
  t.is(statSync(path).mode & 0o777, 0o600);
  const error = t.throws(() => new CaptureWriter(path));
  t.is((error as NodeJS.ErrnoException).code, 'EEXIST');
  const before = statSync(path).size;
  const replaced = new CaptureWriter(path, { force: true });
  replaced.header(testHeader());
  replaced.end({});
  t.true(statSync(path).size < before, 'replaced by the new, shorter capture');
});

test('the file appears with its header: a writer killed before header() leaves nothing, and discard() deletes only its own file', (t) => {
  const path = tempPath('late.pgref');
  const writer = new CaptureWriter(path);
  t.false(existsSync(path), 'created before its header');
  writer.header(testHeader());
  t.deepEqual(walkFrames(path), { magic: true, frames: 1, wholeBytes: statSync(path).size, tailBytes: 0 });
  writer.discard();
  t.false(existsSync(path));

  // Someone else's file that appears between the check and the header is neither replaced nor deleted.
  const raced = tempPath('raced.pgref');
  const late = new CaptureWriter(raced);
  writeFileSync(raced, 'not ours');
  t.is((t.throws(() => late.header(testHeader())) as NodeJS.ErrnoException).code, 'EEXIST');
  late.discard();
  t.is(readFileSync(raced, 'utf8'), 'not ours');

  // A folder that cannot take the file fails at once, before a recorder attaches anything.
  t.is((t.throws(() => new CaptureWriter('/nonexistent/folder/x.pgref')) as NodeJS.ErrnoException).code, 'ENOENT');
});

test('a capture cut at any byte reads back its whole frames and says it was cut short', (t) => {
  const path = tempPath('whole.pgref');
  writeCapture(path, sampleRecords(), { perBatch: 2 });
  const whole = readFileSync(path);
  const cutPath = tempPath('cut.pgref');
  let previousEvents = -1;
  let truncatedReports = 0;
  // Every cut point past the header frame.
  for (let cut = 200; cut < whole.length; cut++) {
    writeFileSync(cutPath, whole.subarray(0, cut));
    let events = 0;
    const result = replayCapture(cutPath, {
      header: () => {},
      stacks: () => {},
      events: (batch) => {
        events += batch.length;
      },
      counters: () => {},
      end: () => {},
    });
    t.truthy(result.truncated, `cut at ${cut} must be reported`);
    if (result.truncated) truncatedReports++;
    t.true(events >= previousEvents, 'a longer prefix never yields fewer events');
    previousEvents = events;
  }
  t.true(truncatedReports > 0);
  t.is(previousEvents, 12, 'the last cut before the trailer still holds every event');
});

test('a torn frame in the middle (bad checksum) stops reading there', (t) => {
  const path = tempPath('flip.pgref');
  writeCapture(path, sampleRecords());
  const bytes = readFileSync(path);
  bytes[bytes.length - 30] ^= 0xff;
  writeFileSync(path, bytes);
  const result = replayCapture(path, { header: () => {}, stacks: () => {}, events: () => {}, counters: () => {}, end: () => {} });
  t.regex(result.truncated ?? '', /checksum/);
});

test('files that are not captures are refused with one clear line', (t) => {
  const text = tempPath('notes.txt');
  writeFileSync(text, 'hello, this is not a capture\n');
  const sink = { header: () => {}, stacks: () => {}, events: () => {}, counters: () => {}, end: () => {} };
  t.throws(() => replayCapture(text, sink), { instanceOf: CaptureError, message: /is not a pageref capture/ });
  const empty = tempPath('empty.pgref');
  writeFileSync(empty, '');
  t.throws(() => replayCapture(empty, sink), { instanceOf: CaptureError, message: /is not a pageref capture/ });
  t.throws(() => replayCapture(tempPath('missing.pgref'), sink), { instanceOf: CaptureError, message: /cannot open .*ENOENT/ });
  const magicOnly = tempPath('magic.pgref');
  writeFileSync(magicOnly, 'PAGEREF\n');
  t.throws(() => replayCapture(magicOnly, sink), { instanceOf: CaptureError, message: /holds no header/ });
});

test('a capture without a trailer (the recorder was killed) is reported as not finished', (t) => {
  const path = tempPath('killed.pgref');
  writeCapture(path, sampleRecords(), { finish: false });
  const result = replayCapture(path, { header: () => {}, stacks: () => {}, events: () => {}, counters: () => {}, end: () => {} });
  t.regex(result.truncated ?? '', /no trailer/);
  truncateSync(path, statSync(path).size - 1);
  const cut = replayCapture(path, { header: () => {}, stacks: () => {}, events: () => {}, counters: () => {}, end: () => {} });
  t.regex(cut.truncated ?? '', /cut short/);
});

test('per-pfn counts frames read back and add up; rows without events or with impossible pfns are refused', (t) => {
  const good = tempPath('counts.pgref');
  writeCapture(good, [], {
    recordOptions: { aggregateSlots: 16 },
    pfnCounts: [
      { pfn: [3, 9], gets: [2, 0], puts: [1, 1], events: [3, 1], lastCount: [1, 0], lastTsNs: [10, 20] },
      { pfn: [3], gets: [1], puts: [0], events: [1], lastCount: [2], lastTsNs: [30] },
    ],
  });
  const summary = new CaptureSummary();
  replayCapture(good, summary);
  const report = reportJson(summary, 5);
  t.is(report.aggregatedEvents, 5);
  t.deepEqual(report.top[0], { pfn: '0x3', gets: 3, puts: 1, net: 2, events: 4 });

  for (const [bad, message] of [
    [{ pfn: [3], gets: [1], puts: [0], events: [0], lastCount: [1], lastTsNs: [1] }, /row without events/],
    [{ pfn: [2 ** 53], gets: [1], puts: [0], events: [1], lastCount: [1], lastTsNs: [1] }, /impossible pfn/],
    [{ pfn: [3, 4], gets: [1], puts: [0, 0], events: [1, 1], lastCount: [1, 1], lastTsNs: [1, 1] }, /1 values of gets for 2 pfns/],
  ] as const) {
    const path = tempPath('bad-counts.pgref');
    writeCapture(path, [], { pfnCounts: [{ ...bad, pfn: [...bad.pfn], gets: [...bad.gets], puts: [...bad.puts], events: [...bad.events], lastCount: [...bad.lastCount], lastTsNs: [...bad.lastTsNs] }] });
    t.throws(() => replayCapture(path, new CaptureSummary()), { instanceOf: CaptureError, message });
  }
});

/** Every column of every event a capture replays, as plain arrays. */
function replayedColumns(path: string): Record<string, number[]> & { comms: string[] } {
  const out: Record<string, number[]> & { comms: string[] } = { comms: [] } as never;
  replayCapture(path, {
    header: () => {},
    stacks: () => {},
    counters: () => {},
    end: () => {},
    events: (batch, strings) => {
      for (const [key, column] of Object.entries(batch)) {
        if (key === 'length') continue;
        (out[key] ??= []).push(...Array.from(column as ArrayLike<number>).slice(0, batch.length));
      }
      for (let i = 0; i < batch.length; i++) out.comms.push(strings.get(batch.comm[i]));
    },
  });
  return out;
}

test('record blocks (what live recording writes) read back as the same events as column batches, pointers hashed', (t) => {
  const key = Buffer.alloc(16, 5);
  const raw = Buffer.concat(sampleRecords().map((r, i) => (i === 0 ? rawRecord({ type: EventType.PageRefMod, pfn: 0x1000n, word2: 0xffff888012345679n }) : r)));
  const columns = tempPath('columns.pgref');
  const blocks = tempPath('blocks.pgref');
  for (const [path, asBlocks] of [[columns, false], [blocks, true]] as const) {
    const writer = new CaptureWriter(path);
    writer.header(testHeader());
    const bytes = Buffer.from(raw);
    if (asBlocks) {
      hashMappingsInPlace(bytes, bytes.length, new PointerHasher(key));
      writer.records(bytes.subarray(0, 5 * 96));
      writer.records(bytes.subarray(5 * 96));
    } else {
      const strings = new StringTable();
      writer.events(new RecordDecoder(strings, new PointerHasher(key), 1_000_000_000n).decode(bytes, bytes.length), strings);
    }
    writer.end({});
  }
  const fromBlocks = replayedColumns(blocks);
  t.deepEqual(fromBlocks, replayedColumns(columns));
  t.true(fromBlocks.mapping[0] > 0 && fromBlocks.mapping[0] < 2 ** 52, 'the pointer is hashed');
  t.is(fromBlocks.mapping[0] % 4, 1, 'and keeps its low two bits');
  t.false(readFileSync(blocks).includes(Buffer.from([0x79, 0x56, 0x34, 0x12, 0x80, 0x88, 0xff, 0xff])), 'the raw pointer is in the file');
});

test('record blocks of an unknown size, of torn records, with unknown event types, or mixed with column batches are refused', (t) => {
  const cases: [string, (w: CaptureWriter) => void, RegExp][] = [
    ['size', (w) => (w as unknown as { writeFrame(f: object): void }).writeFrame({ records: { recordSize: 64, records: Buffer.alloc(64) } }), /records of 64 bytes/],
    ['torn', (w) => (w as unknown as { writeFrame(f: object): void }).writeFrame({ records: { recordSize: 96, records: Buffer.alloc(100) } }), /does not hold whole records/],
    ['type', (w) => w.records(rawRecord({ type: 200, pfn: 1n })), /event type 200/],
    [
      'mixed',
      (w) => {
        w.records(rawRecord({ type: EventType.PageRefMod, pfn: 1n }));
        const strings = new StringTable();
        w.events(new RecordDecoder(strings, null, 0n).decode(rawRecord({ type: EventType.PageRefMod, pfn: 1n }), 96), strings);
      },
      /mixes column batches with record blocks/,
    ],
  ];
  for (const [name, write, message] of cases) {
    const path = tempPath(`bad-${name}.pgref`);
    const writer = new CaptureWriter(path);
    writer.header(testHeader());
    write(writer);
    writer.end({});
    t.throws(() => replayCapture(path, new CaptureSummary()), { instanceOf: CaptureError, message }, name);
  }
});

test('a frame that claims 2 GiB, or more than the file holds, is reported as torn without allocating what it claims', (t) => {
  for (const [claim, message] of [[0x80000000, /frame length 2147483648 is not plausible/], [MAX_FRAME_SIZE - 1, /torn frame \(10 of 67108863 bytes\)/]] as const) {
    const path = tempPath('claim.pgref');
    const writer = new CaptureWriter(path);
    writer.header(testHeader());
    writer.end({});
    const head = Buffer.alloc(8);
    head.writeUInt32LE(claim, 0);
    appendFileSync(path, Buffer.concat([head, Buffer.alloc(10)]));
    // The reader allocates each frame with Buffer.allocUnsafe: the largest request is what a claim costs.
    const allocUnsafe = Buffer.allocUnsafe;
    let largest = 0;
    Buffer.allocUnsafe = (size: number) => {
      largest = Math.max(largest, size);
      return allocUnsafe(size);
    };
    try {
      const result = replayCapture(path, new CaptureSummary());
      t.regex(result.truncated ?? '', message);
    } finally {
      Buffer.allocUnsafe = allocUnsafe;
    }
    t.true(largest < 4096, `allocated ${largest} bytes for a claim of ${claim}`);
  }
});

test('a page_ref event whose pfn is outside [0, 2^52) is refused, in column batches and record blocks alike; a CMA event without a pfn still reads', (t) => {
  const columns = tempPath('negative-pfn.pgref');
  const writer = new CaptureWriter(columns);
  writer.header(testHeader());
  const strings = new StringTable();
  const batch = new RecordDecoder(strings, null, 0n).decode(rawRecord({ type: EventType.PageRefMod, pfn: 0x1000n }), 96);
  batch.pfn[0] = -4098; // what a flipped bit in a sint64 column made of pfn 0x1001
  writer.events(batch, strings);
  writer.end({});
  t.throws(() => replayCapture(columns, new CaptureSummary()), { instanceOf: CaptureError, message: /an event batch has a page_ref_mod event of impossible pfn -4098/ });

  const blocks = tempPath('huge-pfn.pgref');
  const blockWriter = new CaptureWriter(blocks);
  blockWriter.header(testHeader());
  blockWriter.records(Buffer.concat([rawRecord({ type: EventType.CmaRelease, pfn: 0xffffffffffffffffn, name: 'reserved' }), rawRecord({ type: EventType.PageRefSet, pfn: 1n << 60n })]));
  blockWriter.end({});
  t.throws(() => replayCapture(blocks, new CaptureSummary()), { instanceOf: CaptureError, message: /a record block has a page_ref_set event of impossible pfn 1152921504606847000/ });

  const cma = tempPath('cma.pgref');
  const cmaWriter = new CaptureWriter(cma);
  cmaWriter.header(testHeader());
  cmaWriter.records(rawRecord({ type: EventType.CmaRelease, pfn: 0xffffffffffffffffn, name: 'reserved' }));
  cmaWriter.end({});
  t.notThrows(() => replayCapture(cma, new CaptureSummary()));
});

test('a record block frame written without copying its records is byte for byte the frame protobufjs encodes', (t) => {
  const Frame = captureSchema().Frame;
  // One record, and a drain's full batch, whose lengths take 1 and 3 varint bytes.
  for (const count of [1, 8192]) {
    const records = new Uint8Array(count * RECORD_SIZE).map((_, i) => (i * 7) & 0xff);
    const expected = frameBytes(Frame.encode({ records: { recordSize: RECORD_SIZE, records } }).finish());
    t.deepEqual(Buffer.concat([recordBlockFrameHead(RECORD_SIZE, records), records]), expected, `${count} records`);
  }
});
