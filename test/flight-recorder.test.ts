// The flight recorder's logic without a kernel: record blocks built here
// byte by byte go in as the live source hands them over, a clock given by
// the test stands for CLOCK_MONOTONIC, and the files it writes are read
// back with the capture reader and blame. The kernel path (real failures
// under the vmsplice workload) is test/vm/serve.test.ts.

import test from 'ava';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blameFile } from '../src/cli/blame-command';
import { replayCapture } from '../src/capture/capture-reader';
import { DEFAULT_MAX_PFNS } from '../src/holds/pfn-counters';
import type { CaptureHeader, KernelCounters, StackEntry } from '../src/capture/schema';
import type { EventBatch } from '../src/record/event-batch';
import { EventType } from '../src/record/event-types';
import { DEFAULT_FLIGHT, FlightOptions, FlightRecorder } from '../src/serve/flight-recorder';
import { metricFamilies } from '../src/serve/serve-metrics';
import { ServeState } from '../src/serve/serve-state';
import type { CaptureSink, StreamEnd } from '../src/stream/capture-sink';
import { counters, testHeader } from './helpers/capture';
import { rawRecord } from './helpers/records';

const BASE_NS = 1_000_000_000n; // testHeader's monotonicBaseNs
const SEC = 1e9;
const PIN_STACK = 10;
const RELEASE_STACK = 11;
const OLD_STACK = 12;
const STACKS: StackEntry[] = [
  { id: PIN_STACK, frames: ['__page_ref_mod_unless+0x10', 'try_grab_folio+0x40', 'iov_iter_get_pages2+0x20', 'vmsplice_to_pipe+0x88'] },
  { id: RELEASE_STACK, frames: ['__page_ref_mod_and_test+0x10', 'pipe_buf_release+0x30', 'pipe_release+0x90'] },
  { id: OLD_STACK, frames: ['__page_ref_mod+0x10', 'old_path+0x10'] },
];

/** Counts what reaches the sink behind the recorder. */
class CountingSink implements CaptureSink {
  events_ = 0;
  ended = false;
  header(_header: CaptureHeader): void {}
  stacks(_stacks: StackEntry[]): void {}
  events(batch: EventBatch): void {
    this.events_ += batch.length;
  }
  counters(_counters: KernelCounters): void {}
  end(_end: StreamEnd): void {
    this.ended = true;
  }
}

/** ns since the base → the record's kernel timestamp. */
const at = (sec: number) => BASE_NS + BigInt(Math.round(sec * SEC));
const churn = (sec: number, pfn = 0x40000) => rawRecord({ type: EventType.PageRefMod, tsNs: at(sec), pfn: BigInt(pfn), val: 1, count: 2, pid: 5, tgid: 5, comm: 'kworker', stackId: -1 });
const pin = (sec: number, pfn: number) => rawRecord({ type: EventType.PageRefModUnless, tsNs: at(sec), pfn: BigInt(pfn), val: 1, ret: 1, count: 2, pid: 100, tgid: 100, comm: 'vmsplice-hold', stackId: PIN_STACK });
const old = (sec: number) => rawRecord({ type: EventType.PageRefMod, tsNs: at(sec), pfn: 0x41000n, val: 1, count: 2, pid: 6, tgid: 6, comm: 'old', stackId: OLD_STACK });
/** test_pages_isolated over [pfn, pfn + 1) that stopped at pfn: failed. */
const failure = (sec: number, pfn: number) => rawRecord({ type: EventType.TestPagesIsolated, tsNs: at(sec), pfn: BigInt(pfn), word1: BigInt(pfn + 1), word2: BigInt(pfn), pid: 300, tgid: 300, comm: 'cma-alloc' });
/** test_pages_isolated that reached end_pfn: isolation succeeded, not a failure. */
const success = (sec: number, pfn: number) => rawRecord({ type: EventType.TestPagesIsolated, tsNs: at(sec), pfn: BigInt(pfn), word1: BigInt(pfn + 1), word2: BigInt(pfn + 1), pid: 300, tgid: 300, comm: 'cma-alloc' });
const busyRetry = (sec: number) => rawRecord({ type: EventType.CmaAllocBusyRetry, tsNs: at(sec), pid: 300, tgid: 300, comm: 'cma-alloc' });

interface Rig {
  recorder: FlightRecorder;
  next: CountingSink;
  dir: string;
  now: { sec: number };
  log: string[];
  /** Hands one block over at time `sec` (the clock moves there first). */
  feed(sec: number, ...records: Buffer[]): void;
  files(): string[];
}

function rig(options: Partial<FlightOptions> = {}, dir = mkdtempSync(join(tmpdir(), 'pageref-flight-'))): Rig {
  const now = { sec: 0 };
  const next = new CountingSink();
  const log: string[] = [];
  const recorder = new FlightRecorder(next, { ...DEFAULT_FLIGHT, dir, ...options }, (line) => log.push(line), () => now.sec * SEC);
  recorder.header(testHeader());
  recorder.stacks(STACKS);
  return {
    recorder,
    next,
    dir,
    now,
    log,
    feed(sec, ...records) {
      now.sec = sec;
      recorder.records(Buffer.concat(records));
    },
    files: () => readdirSync(dir).sort(),
  };
}

function eventsIn(path: string): { types: number[]; ts: number[] } {
  const types: number[] = [];
  const ts: number[] = [];
  replayCapture(path, {
    header() {},
    stacks() {},
    counters() {},
    end() {},
    events(batch) {
      for (let i = 0; i < batch.length; i++) {
        types.push(batch.type[i]);
        ts.push(batch.tsNs[i] / SEC);
      }
    },
  });
  return { types, ts };
}

test('nothing is written when nothing fails: a minute of page_ref records and successful isolation tests, every record handed on', (t) => {
  const r = rig({ seconds: 10 });
  for (let s = 1; s <= 60; s++) r.feed(s, churn(s), pin(s + 0.1, 0x30000), success(s + 0.2, 0x30001));
  r.recorder.counters(counters());
  r.recorder.end({ trailer: { endTimeUnixUs: 0, stopReason: 'SIGTERM', counters: counters() } });
  t.deepEqual(r.files(), []);
  t.deepEqual(r.recorder.captures(), []);
  t.is(r.recorder.stats.captures, 0);
  t.is(r.next.events_, 180);
  t.true(r.next.ended);
});

test('the ring keeps the last --flight-seconds of records, by record time and by the clock when no records come', (t) => {
  const r = rig({ seconds: 10 });
  const block = 3 * 96;
  for (let s = 1; s <= 30; s++) r.feed(s, churn(s), churn(s + 0.1), churn(s + 0.2));
  // Blocks whose last record is at 20.2 s or later: 20..30.
  t.is(r.recorder.heldBytes, 11 * block);
  r.now.sec = 35;
  r.recorder.tick();
  t.is(r.recorder.heldBytes, 6 * block, 'blocks 25..30 remain at 35 s');
  r.now.sec = 100;
  r.recorder.tick();
  t.is(r.recorder.heldBytes, 0);
});

test('the ring keeps at most --flight-bytes, the oldest blocks going first', (t) => {
  const block = 4 * 96;
  const r = rig({ seconds: 1000, bytes: 5 * block });
  for (let s = 1; s <= 20; s++) r.feed(s, churn(s), churn(s), churn(s), churn(s));
  t.is(r.recorder.heldBytes, 5 * block);
  // A failure now gets the last five blocks (16..20 s) and itself.
  r.feed(21, failure(21, 0x30000));
  r.now.sec = 30;
  r.recorder.tick();
  const [file] = r.files();
  const { ts } = eventsIn(join(r.dir, file));
  t.is(Math.min(...ts), 16, 'blocks 1..15 went; the five before the failure are in the file');
  t.is(ts.length, 5 * 4 + 1, JSON.stringify(ts));
});

test('a failure writes a capture of the window before and after it, which blame reads: the pin taken before the failure is the holder', (t) => {
  const r = rig({ seconds: 10, afterSeconds: 5 });
  r.feed(1, old(1)); // older than the window: left out, and its stack with it
  r.feed(12, pin(12, 0x30000), pin(12.1, 0x30001));
  r.feed(15, churn(15));
  r.feed(20, failure(20, 0x30000), busyRetry(20.01), failure(20.02, 0x30001), busyRetry(20.03));
  t.true(r.recorder.windowOpen);
  r.feed(23, churn(23));
  t.deepEqual(r.files(), [], 'nothing is written before the window ends');
  r.recorder.counters(counters({ seen: [0, 0, 0, 0, 9, 0, 0, 2, 0, 0, 2, 0] }));
  r.feed(26, churn(26)); // after the deadline (5 s past the last failure, 20.03 s): closes the window, and is not in it
  t.false(r.recorder.windowOpen);
  const files = r.files();
  t.deepEqual(files, ['pageref-flight-20231114T221341.000Z.capture'], 'named by the first failure: the start (boot + 1 s) + 20 s');
  const path = join(r.dir, files[0]);
  const { types, ts } = eventsIn(path);
  t.deepEqual(ts, [12, 12.1, 15, 20, 20.01, 20.02, 20.03, 23]);
  t.is(types.filter((type) => type === EventType.TestPagesIsolated).length, 2);

  const blame = JSON.parse(blameFile(path, true, DEFAULT_MAX_PFNS));
  const holders = blame.byStack.filter((g: { role: string }) => g.role === 'holder');
  t.deepEqual(holders.map((g: { kind: string; pages: number; frame: string }) => [g.kind, g.pages, g.frame]), [['pin', 2, 'try_grab_folio+0x40']]);
  t.false(JSON.stringify(blame).includes('old_path'), 'the stack of a record outside the window is not in the file');

  const listing = r.recorder.captures();
  t.is(listing.length, 1);
  t.is(listing[0].name, files[0]);
  t.is(listing[0].failures, 4, 'two isolation failures, two busy retries');
  t.true(listing[0].bytes > 8 * 96);
  t.regex(listing[0].time, /^\d{4}-\d\d-\d\dT/);
  t.is(r.recorder.stats.captures, 1);
  t.regex(r.log.join('\n'), /flight recorder: wrote .*pageref-flight-20231114T221341\.000Z\.capture \(\d+ bytes, 4 failures; the window ended\)/);
  t.false(r.files().some((f) => f.endsWith('.partial')));
});

test('failures during an open window join it: one file, the window extended to --flight-after past the last one; a failure after it opens another', (t) => {
  const r = rig({ seconds: 30, afterSeconds: 5 });
  r.feed(10, failure(10, 0x30000));
  r.feed(13, failure(13, 0x30000)); // joins: the deadline moves from 15 s to 18 s
  r.feed(17, churn(17)); // in the window only because of the join
  r.feed(19, churn(19)); // past 18 s: the file is written
  t.is(r.files().length, 1);
  t.deepEqual(eventsIn(join(r.dir, r.files()[0])).ts, [10, 13, 17]);
  t.is(r.recorder.captures()[0].failures, 2);
  r.feed(40, failure(40, 0x30001));
  r.now.sec = 45.4;
  r.recorder.tick();
  t.is(r.files().length, 1, 'the clock closes a window only once its last records can have come in');
  r.now.sec = 45.6;
  r.recorder.tick();
  t.is(r.files().length, 2);
  t.is(r.recorder.stats.captures, 2);
});

test('failures that never stop still produce files: a window is never longer than --flight-seconds past its first failure', (t) => {
  const r = rig({ seconds: 10, afterSeconds: 5 });
  for (let s = 0; s <= 30; s++) r.feed(s, failure(s, 0x30000));
  // Windows open at 0 s (ends at 10 s), 11 s (ends at 21 s), 22 s (open).
  t.is(r.files().length, 2);
  t.true(r.recorder.windowOpen);
});

test('SIGTERM during an open window finishes its file before the session ends', (t) => {
  const r = rig({ afterSeconds: 60 });
  r.feed(5, pin(5, 0x30000));
  r.feed(6, failure(6, 0x30000));
  r.recorder.end({ trailer: { endTimeUnixUs: 0, stopReason: 'SIGTERM', counters: counters() } });
  t.true(r.next.ended);
  t.is(r.files().length, 1);
  t.deepEqual(eventsIn(join(r.dir, r.files()[0])).ts, [5, 6]);
  t.regex(r.log.join('\n'), /the session ended \(SIGTERM\) during the window/);
});

test('--flight-max-files: the oldest files are deleted first; files an earlier run left count, and other files are never touched', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pageref-flight-'));
  writeFileSync(join(dir, 'pageref-flight-20200101T000000.000Z.capture'), 'an earlier run');
  writeFileSync(join(dir, 'notes.txt'), 'not ours');
  const r = rig({ seconds: 5, afterSeconds: 1, maxFiles: 2 }, dir);
  t.deepEqual(r.recorder.captures().map((f) => [f.name, f.failures]), [['pageref-flight-20200101T000000.000Z.capture', null]]);
  for (const s of [10, 20, 30]) {
    r.feed(s, failure(s, 0x30000));
    r.feed(s + 2, churn(s + 2));
  }
  t.deepEqual(r.files(), ['notes.txt', 'pageref-flight-20231114T221341.000Z.capture', 'pageref-flight-20231114T221351.000Z.capture']);
  t.deepEqual(r.recorder.captures().map((f) => f.name), r.files().slice(1));
  t.is(r.recorder.stats.captures, 3);
  t.is(r.recorder.stats.deleted, 2);
});

test('--flight-max-bytes: the oldest files are deleted until the total fits', (t) => {
  const probe = rig({ seconds: 5, afterSeconds: 1 });
  probe.feed(10, failure(10, 0x30000));
  probe.feed(12, churn(12));
  const size = probe.recorder.captures()[0].bytes;
  // Room for two such files, not three.
  const r = rig({ seconds: 5, afterSeconds: 1, maxBytes: 2 * size + size / 2 });
  for (const s of [10, 20, 30]) {
    r.feed(s, failure(s, 0x30000));
    r.feed(s + 2, churn(s + 2));
  }
  const listing = r.recorder.captures();
  t.deepEqual(listing.map((f) => f.name), ['pageref-flight-20231114T221341.000Z.capture', 'pageref-flight-20231114T221351.000Z.capture']);
  t.true(listing.reduce((sum, f) => sum + f.bytes, 0) <= 2 * size + size / 2);
  t.is(r.recorder.stats.deleted, 1);
});

test('serve with a flight recorder: /captures lists its files and /metrics counts them; without one, no flight series', (t) => {
  const r = rig({ seconds: 5, afterSeconds: 1, maxFiles: 1 });
  const state = new ServeState({ pageRefAvailable: true, maxCulprits: 10, maxPfns: DEFAULT_MAX_PFNS, culpritWindowSec: 3600, clockNs: () => 29_000_000_000 });
  state.flight = r.recorder;
  for (const s of [10, 20]) {
    r.feed(s, failure(s, 0x30000));
    r.feed(s + 2, churn(s + 2));
  }
  t.deepEqual(state.captures().map((c) => [c.name, c.failures]), [['pageref-flight-20231114T221341.000Z.capture', 1]]);
  const families = new Map(metricFamilies(state.snapshot(), 10).map((f) => [f.name, f.samples[0]?.value]));
  t.is(families.get('pageref_flight_captures_total'), 2);
  t.is(families.get('pageref_flight_captures_deleted_total'), 1);
  const plain = new ServeState({ pageRefAvailable: true, maxCulprits: 10, maxPfns: DEFAULT_MAX_PFNS, culpritWindowSec: 3600, clockNs: () => 29_000_000_000 });
  t.false(metricFamilies(plain.snapshot(), 10).some((f) => f.name.startsWith('pageref_flight_')));
  t.deepEqual(plain.captures(), []);
});
