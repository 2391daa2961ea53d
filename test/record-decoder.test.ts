import test from 'ava';
import { RecordDecoder } from '../src/record/record-decoder';
import { StringTable } from '../src/record/string-table';
import { PointerHasher } from '../src/record/pointer-hash';
import { EventType } from '../src/record/event-types';
import { NO_PFN, isolationFailed, cmaAllocFailed } from '../src/record/event-batch';
import { rawRecord } from './helpers/records';

const BASE = 5_000_000_000_000n;

function decoder(strings = new StringTable()) {
  return new RecordDecoder(strings, new PointerHasher(Buffer.alloc(16, 7)), BASE);
}

test('a page_ref_mod_and_test record decodes field by field from hand-placed bytes', (t) => {
  const bytes = rawRecord({
    tsNs: BASE + 1234n, pfn: 0x17ac9n, word1: 0x40068n, word2: 0xffff880015a78dc1n,
    pid: 9018, tgid: 9000, count: 0, mapcount: -1, val: -1, ret: 1, stackId: 42, cpu: 4,
    type: EventType.PageRefModAndTest, mt: 4, comm: 'kworker/u8:2',
  });
  const strings = new StringTable();
  const batch = decoder(strings).decode(bytes, bytes.length);
  t.is(batch.length, 1);
  t.is(batch.type[0], EventType.PageRefModAndTest);
  t.is(batch.tsNs[0], 1234);
  t.is(batch.pfn[0], 0x17ac9);
  t.is(batch.flags[0], 0x40068);
  t.is(batch.pid[0], 9018);
  t.is(batch.tgid[0], 9000);
  t.is(batch.count[0], 0);
  t.is(batch.mapcount[0], -1);
  t.is(batch.val[0], -1);
  t.is(batch.ret[0], 1);
  t.is(batch.stackId[0], 42);
  t.is(batch.cpu[0], 4);
  t.is(batch.mt[0], 4);
  t.is(strings.get(batch.comm[0]), 'kworker/u8:2');
});

test('kernel pointers become keyed hashes that keep equality and the anon bit, never the pointer', (t) => {
  const records = Buffer.concat([
    rawRecord({ type: EventType.PageRefMod, word2: 0xffff880015a78dc1n }),
    rawRecord({ type: EventType.PageRefMod, word2: 0xffff880015a78dc1n }),
    rawRecord({ type: EventType.PageRefMod, word2: 0xffff880015a79000n }),
    rawRecord({ type: EventType.PageRefMod, word2: 0n }),
  ]);
  const batch = decoder().decode(records, records.length);
  t.is(batch.mapping[0], batch.mapping[1]);
  t.not(batch.mapping[0], batch.mapping[2]);
  t.is(batch.mapping[0] % 4, 1, 'PAGE_MAPPING_ANON kept');
  t.is(batch.mapping[2] % 4, 0);
  t.is(batch.mapping[3], 0, 'NULL stays NULL');
  t.true(batch.mapping[0] < 2 ** 52);
  const other = new RecordDecoder(new StringTable(), new PointerHasher(Buffer.alloc(16, 9)), BASE).decode(records, records.length);
  t.not(other.mapping[0], batch.mapping[0], 'another capture, another key');
});

test('isolation and CMA records keep their own meaning of the shared words', (t) => {
  const records = Buffer.concat([
    rawRecord({ type: EventType.TestPagesIsolated, pfn: 0x17800n, word1: 0x17c00n, word2: 0x17ac9n }),
    rawRecord({ type: EventType.TestPagesIsolated, pfn: 0x17800n, word1: 0x17c00n, word2: 0x17c00n }),
    rawRecord({ type: EventType.CmaAllocFinish, pfn: 0xffffffffffffffffn, word1: 8192n, word2: 0n, name: 'reserved' }),
    rawRecord({ type: EventType.CmaAllocFinish, pfn: 0x20000n, word1: 8n, word2: 0n, val: 1, ret: 0, name: 'reserved' }),
    rawRecord({ type: EventType.CmaAllocFinish, pfn: 0x20000n, word1: 8n, val: 1, ret: -16, name: 'reserved' }),
  ]);
  const strings = new StringTable();
  const batch = decoder(strings).decode(records, records.length);
  t.is(batch.flags[0], 0x17c00, 'end_pfn');
  t.is(batch.mapping[0], 0x17ac9, 'fin_pfn is not hashed');
  t.true(isolationFailed(batch, 0));
  t.false(isolationFailed(batch, 1));
  t.is(batch.pfn[2], NO_PFN);
  t.true(cmaAllocFailed(batch, 2), '6.1 reports failure only as a NULL page (val 0)');
  t.false(cmaAllocFailed(batch, 3));
  t.true(cmaAllocFailed(batch, 4), '6.12 reports errorno');
  t.is(strings.get(batch.name[2]), 'reserved');
  t.is(batch.flags[2], 8192);
});

test('a byte count that is not whole records is refused', (t) => {
  const bytes = rawRecord({});
  t.throws(() => decoder().decode(bytes, 95), { instanceOf: RangeError });
});

test('comm changes of a pid (exec) are seen', (t) => {
  const records = Buffer.concat([rawRecord({ pid: 7, comm: 'bash' }), rawRecord({ pid: 7, comm: 'vmsplice-hold' }), rawRecord({ pid: 7, comm: 'vmsplice-hold' })]);
  const strings = new StringTable();
  const batch = decoder(strings).decode(records, records.length);
  t.deepEqual(Array.from(batch.comm, (i) => strings.get(i)), ['bash', 'vmsplice-hold', 'vmsplice-hold']);
});
