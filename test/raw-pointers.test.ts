// record --raw-pointers: the header says the capture holds the kernel's
// page->mapping pointers, and report and blame warn about it; captures
// without the field (all older ones) read as hashed. The kernel side is in
// test/vm/sampling.test.ts.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { replayCapture } from '../src/capture/capture-reader';
import { CaptureWriter } from '../src/capture/capture-writer';
import type { CaptureHeader } from '../src/capture/schema';
import { buildHeader, LiveCaptureOptions } from '../src/live/live-capture';
import { EventType } from '../src/record/event-types';
import { lines, pageref } from './helpers/cli';
import { tempPath, testHeader } from './helpers/capture';
import { rawRecord } from './helpers/records';

const POINTER = 0xff11000003c4c001n; // an anonymous mapping in a 5-level direct map, as seen in the 6.12 guest

/** A capture as live recording writes it (record blocks), the mapping left as the kernel gave it when `raw`. */
function recordedCapture(raw: boolean | undefined): string {
  const path = tempPath('capture.pgref');
  const writer = new CaptureWriter(path);
  const header: Partial<CaptureHeader> = testHeader();
  if (raw === undefined) delete header.rawPointers;
  else header.rawPointers = raw;
  writer.header(header as CaptureHeader);
  writer.records(
    Buffer.concat([
      rawRecord({ type: EventType.PageRefMod, tsNs: 1_000_001_000n, pfn: 0x17ac9n, word2: POINTER, val: 1, count: 2, pid: 9018, tgid: 9018, comm: 'holder' }),
      rawRecord({ type: EventType.TestPagesIsolated, tsNs: 1_000_002_000n, pfn: 0x17800n, word1: 0x17c00n, word2: 0x17ac9n, pid: 9131, tgid: 9131 }),
    ]),
  );
  writer.end({});
  return path;
}

const WARNING = /WARNING: this capture holds raw kernel pointers \(recorded with --raw-pointers: page->mapping is not hashed\), which reveal where kernel memory is \(KASLR\)/;

test('a --raw-pointers capture says so in its header, and report and blame say so, as text and as JSON', (t) => {
  const path = recordedCapture(true);
  let header: CaptureHeader | undefined;
  let mapping = 0;
  replayCapture(path, { header: (h) => (header = h), stacks: () => {}, counters: () => {}, end: () => {}, events: (batch) => (mapping = batch.mapping[0]) });
  t.true(header?.rawPointers);
  t.true(mapping >= 0xff00000000000000, 'the pointer reads back as it was, to a double\'s precision');
  t.true(readFileSync(path).includes(Buffer.from('01c0c403000011ff', 'hex')), 'the file holds the pointer\'s bytes');
  t.true(JSON.parse(pageref(['report', path, '--json']).stdout).capture.rawPointers);
  t.regex(pageref(['report', path]).stdout, WARNING);
  t.true(JSON.parse(pageref(['blame', path, '--json']).stdout).recording.rawPointers);
  t.regex(pageref(['blame', path]).stdout, WARNING);
});

test('a capture without the field, as every capture before --raw-pointers, reads as hashed, and report and blame say nothing', (t) => {
  for (const raw of [undefined, false]) {
    const path = recordedCapture(raw);
    t.false(JSON.parse(pageref(['report', path, '--json']).stdout).capture.rawPointers);
    t.notRegex(pageref(['report', path]).stdout, /raw kernel pointers/);
    t.false(JSON.parse(pageref(['blame', path, '--json']).stdout).recording.rawPointers);
    t.notRegex(pageref(['blame', path]).stdout, /raw kernel pointers/);
  }
});

test('a live capture\'s header records --raw-pointers, and only when it was given', (t) => {
  const options: LiveCaptureOptions = {
    tracer: { events: ['page_ref_mod'], ringBytes: 1 << 24, stacks: 'none', stackEntries: 0, stackSample: 1, samplePfn: 1, sampleEvents: 1, pids: [], comms: [], pfnRanges: [], aggregateSlots: 0, attach: 'auto' },
    eventsMissing: [],
    commandLine: ['pageref', 'record'],
  };
  const tracer = { attached: ['page_ref_mod'], attachedBy: 'btf' as const, selfTgid: 1234 };
  t.false(buildHeader(options, tracer, 1n, 0).rawPointers);
  t.true(buildHeader({ ...options, rawPointers: true }, tracer, 1n, 0).rawPointers);
});

test('--raw-pointers is an option of record, which writes mappings; top and live blame show none', (t) => {
  const record = pageref(['record', '-o', tempPath('never.pgref'), '--raw-pointers', '--duration', '1']);
  t.not(record.status, 2, `record --raw-pointers is not a usage error: ${record.stderr}`);
  t.notRegex(record.stderr, /unknown option/);
  for (const args of [['top', '--raw-pointers'], ['blame', '--raw-pointers']]) {
    const run = pageref(args);
    t.is(run.status, 2);
    t.deepEqual(lines(run.stderr), ["pageref: unknown option '--raw-pointers'"]);
  }
});
