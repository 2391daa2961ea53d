// Writes small captures through the real writer, for reader and CLI tests.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureWriter } from '../../src/capture/capture-writer';
import { CaptureHeader, FORMAT_VERSION, KernelCounters, PfnCounts, RecordOptions } from '../../src/capture/schema';
import { EVENT_COUNT } from '../../src/record/event-types';
import { PointerHasher } from '../../src/record/pointer-hash';
import { RecordDecoder } from '../../src/record/record-decoder';
import { StringTable } from '../../src/record/string-table';

export function tempPath(name: string): string {
  return join(mkdtempSync(join(tmpdir(), 'pageref-test-')), name);
}

export function testHeader(): CaptureHeader {
  return {
    formatVersion: FORMAT_VERSION,
    kernelRelease: '6.1.192',
    kernelVersion: '#1 SMP',
    machine: 'x86_64',
    hostname: 'testhost',
    monotonicBaseNs: '1000000000',
    bootTimeUnixUs: 1_700_000_000_000_000,
    startTimeUnixUs: 1_700_000_001_000_000,
    commandLine: ['pageref', 'record'],
    options: {
      pids: [],
      comms: [],
      stacks: true,
      ringBytes: 1 << 24,
      stackEntries: 16384,
      pfnRanges: [],
      stacksMode: 'all',
      stackSample: 64,
      samplePfn: 1,
      sampleEvents: 1,
      aggregateSlots: 0,
      cmaAreas: [],
      attach: 'tracepoint',
    },
    eventsAttached: ['page_ref_mod', 'test_pages_isolated'],
    eventsMissing: [],
    pageSize: 4096,
    source: 'test',
    rawPointers: false,
  };
}

export function counters(fill: Partial<Record<keyof KernelCounters, number[]>> = {}, received = 0): KernelCounters {
  const zeros = () => new Array<number>(EVENT_COUNT).fill(0);
  return {
    seen: fill.seen ?? zeros(),
    filtered: fill.filtered ?? zeros(),
    sampledOut: fill.sampledOut ?? zeros(),
    countedOnly: fill.countedOnly ?? zeros(),
    emitted: fill.emitted ?? zeros(),
    dropped: fill.dropped ?? zeros(),
    stackLost: fill.stackLost ?? zeros(),
    aggregated: fill.aggregated ?? zeros(),
    aggregateOverflow: fill.aggregateOverflow ?? zeros(),
    recursionMisses: fill.recursionMisses ?? zeros(),
    recordsReceived: received,
  };
}

export interface WriteCaptureOptions {
  perBatch?: number;
  finish?: boolean;
  recordOptions?: Partial<RecordOptions>;
  pfnCounts?: PfnCounts[];
  /** The trailer's kernel counters, per event type (default: every record emitted, 2 page_ref_mod records dropped). */
  trailerCounters?: Partial<Record<keyof KernelCounters, number[]>>;
}

/** A finished capture of the given raw records, in batches of `perBatch`, with stacks 1 and 2. */
export function writeCapture(path: string, records: Buffer[], options: WriteCaptureOptions = {}): void {
  const writer = new CaptureWriter(path);
  const strings = new StringTable();
  const decoder = new RecordDecoder(strings, new PointerHasher(), 1_000_000_000n);
  const header = testHeader();
  writer.header({ ...header, options: { ...header.options, ...options.recordOptions } });
  for (const counts of options.pfnCounts ?? []) writer.pfnCounts(counts);
  writer.stacks([
    { id: 1, frames: ['__page_ref_mod+0x12', 'try_grab_page+0x40', 'follow_page_pte+0x1f0'] },
    { id: 2, frames: ['__page_ref_mod_and_test+0x10', 'release_pages+0x1a4', 'do_exit+0x2e9'] },
  ]);
  const perBatch = options.perBatch ?? 3;
  for (let i = 0; i < records.length; i += perBatch) {
    const chunk = Buffer.concat(records.slice(i, i + perBatch));
    writer.events(decoder.decode(chunk, chunk.length), strings);
    writer.counters(counters({}, i + perBatch));
  }
  if (options.finish === false) {
    writer.end({});
    return;
  }
  writer.end({ trailer: { endTimeUnixUs: 1_700_000_003_000_000, stopReason: 'SIGINT', counters: counters(options.trailerCounters ?? { emitted: [0, records.length, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], dropped: [0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] }, records.length) } });
}
