// What the fuzzer starts from: captures made by the project's own writer,
// between them holding every frame kind (header, stacks, column batches with
// new strings, record blocks, counters, pfn counts, trailer), and the ftrace
// texts of test/fixtures (each shape the importer takes, the seed mail too).

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CaptureWriter } from '../../src/capture/capture-writer';
import { FtraceTextParser } from '../../src/import/ftrace-text';
import { EventType } from '../../src/record/event-types';
import { PointerHasher } from '../../src/record/pointer-hash';
import { hashMappingsInPlace } from '../helpers/hashed-records';
import { counters, tempPath, testHeader, writeCapture } from '../helpers/capture';
import { rawRecord } from '../helpers/records';

export const FIXTURES = join(__dirname, '..', '..', '..', 'test', 'fixtures');

export interface Seed {
  name: string;
  bytes: Buffer;
}

const KEY = Buffer.alloc(16, 7);

function records(): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < 6; i++) {
    out.push(rawRecord({ type: EventType.PageRefMod, tsNs: 1_000_000_000n + BigInt(i * 1000), pfn: 0x1000n + BigInt(i % 3), word1: 0x40048n, word2: 0xffff888012345679n, val: 1, count: 2, stackId: 1 + (i % 2), comm: i % 2 ? 'vmsplice-hold' : 'bash', pid: 100 + (i % 2), tgid: 100 }));
  }
  out.push(rawRecord({ type: EventType.PageRefModAndTest, tsNs: 1_000_020_000n, pfn: 0x1000n, val: -1, ret: 1, stackId: 2, comm: 'bash', pid: 100 }));
  out.push(rawRecord({ type: EventType.TestPagesIsolated, tsNs: 1_000_030_000n, pfn: 0x1000n, word1: 0x1400n, word2: 0x1001n, comm: 'cma-test' }));
  out.push(rawRecord({ type: EventType.CmaAllocFinish, tsNs: 1_000_040_000n, pfn: 0x1000n, word1: 16n, word2: 4n, val: 1, ret: -16, comm: 'cma-test', name: 'reserved' }));
  out.push(rawRecord({ type: EventType.CmaRelease, tsNs: 1_000_050_000n, pfn: 0xffffffffffffffffn, word1: 16n, comm: 'cma-test', name: 'linux,cma' }));
  return out;
}

const PFN_COUNTS = [
  { pfn: [3, 9], gets: [2, 0], puts: [1, 1], events: [3, 1], lastCount: [1, 0], lastTsNs: [10, 20] },
  { pfn: [3], gets: [1], puts: [0], events: [1], lastCount: [2], lastTsNs: [30] },
];

/** Seed captures, one of each kind the writer makes. */
export function captureSeeds(): Seed[] {
  const seeds: Seed[] = [];
  const columns = tempPath('columns.pgref');
  writeCapture(columns, records(), { perBatch: 4, pfnCounts: PFN_COUNTS, recordOptions: { pfnRanges: [{ start: 0x1000, end: 0x1400 }], cmaAreas: [{ name: 'reserved', basePfn: 0x1000, count: 1024 }] } });
  seeds.push({ name: 'columns', bytes: readFileSync(columns) });

  const unfinished = tempPath('unfinished.pgref');
  writeCapture(unfinished, records().slice(0, 5), { perBatch: 2, finish: false });
  seeds.push({ name: 'unfinished', bytes: readFileSync(unfinished) });

  // What live recording writes: raw records with their mappings hashed, in blocks.
  const blocks = tempPath('blocks.pgref');
  const writer = new CaptureWriter(blocks);
  writer.header(testHeader());
  writer.stacks([{ id: 1, frames: ['__page_ref_mod+0x12', 'try_grab_page+0x40'] }, { id: 2, frames: ['__page_ref_mod_and_test+0x10', 'release_pages+0x1a4'] }]);
  const raw = Buffer.concat(records());
  hashMappingsInPlace(raw, raw.length, new PointerHasher(KEY));
  writer.records(raw.subarray(0, 4 * 96));
  writer.counters(counters({ seen: [0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] }, 4));
  writer.records(raw.subarray(4 * 96));
  writer.pfnCounts(PFN_COUNTS[1]);
  writer.end({ trailer: { endTimeUnixUs: 1_700_000_003_000_000, stopReason: 'duration', counters: counters({ emitted: [1, 6, 1, 0, 0, 0, 0, 1, 0, 1, 0, 1] }, 10) } });
  seeds.push({ name: 'blocks', bytes: readFileSync(blocks) });

  // What `pageref import` writes.
  const imported = tempPath('imported.pgref');
  const importer = new CaptureWriter(imported);
  const parser = new FtraceTextParser(importer, { name: 'ftrace-trace.txt', pointerKey: KEY, startTimeUnixUs: 1_700_000_000_000_000, batchSize: 4 });
  for (const line of readFileSync(join(FIXTURES, 'ftrace-trace.txt'), 'utf8').split('\n')) parser.line(line);
  parser.end();
  seeds.push({ name: 'imported', bytes: readFileSync(imported) });
  return seeds;
}

/** Every ftrace text fixture. */
export function textSeeds(): { name: string; text: string }[] {
  return readdirSync(FIXTURES)
    .filter((name) => name.endsWith('.txt'))
    .sort()
    .map((name) => ({ name, text: readFileSync(join(FIXTURES, name), 'utf8') }));
}
