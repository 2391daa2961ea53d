import test from 'ava';
import { BlameAnalysis } from '../src/blame/blame-analysis';
import { blameJson } from '../src/blame/blame-report';
import { renderBlame } from '../src/blame/blame-text';
import { referenceKind, tellingFrame } from '../src/blame/stack-kinds';
import { EventType } from '../src/record/event-types';
import { PointerHasher } from '../src/record/pointer-hash';
import { RecordDecoder } from '../src/record/record-decoder';
import { StringTable } from '../src/record/string-table';
import { testHeader } from './helpers/capture';
import { rawRecord } from './helpers/records';

const BASE = 92_000_000_000n;
const at = (seconds: number) => BASE + BigInt(Math.round((seconds - 92) * 1e9));

function analyse(records: Buffer[], stacks: Record<number, string[]>): BlameAnalysis {
  const analysis = new BlameAnalysis();
  const strings = new StringTable();
  const decoder = new RecordDecoder(strings, new PointerHasher(), BASE);
  analysis.header(testHeader());
  analysis.stacks(Object.entries(stacks).map(([id, frames]) => ({ id: Number(id), frames })));
  const bytes = Buffer.concat(records);
  analysis.events(decoder.decode(bytes, bytes.length), strings);
  analysis.end({});
  return analysis;
}

// The example of the commit that added the page_ref tracepoints (seeds/),
// turned into records by hand: pid 9018 allocates and maps pfn 0x17ac9,
// pid 9131's isolation of 0x17800-0x17c00 fails at it, and 9018's exit path
// drops the reference afterwards in a batch (release_pages ... do_exit).
const SEED_STACKS = {
  1: ['get_page_from_freelist+0x?', '__alloc_pages_nodemask+0x?', 'alloc_pages_vma+0x?', 'handle_mm_fault+0x?', '__do_page_fault+0x?'],
  2: ['release_pages+0x254', 'free_pages_and_swap_cache+0x77', 'tlb_flush_mmu_free+0x36', 'tlb_finish_mmu+0x1c', 'exit_mmap+0xd7', 'mmput+0x57', 'do_exit+0x2d9', 'do_group_exit+0x3f', 'SyS_exit_group+0x14', 'entry_SYSCALL_64_fastpath+0x16'],
};
const SEED = [
  rawRecord({ type: EventType.PageRefSet, tsNs: at(92.678375), pfn: 0x17ac9n, count: 1, val: 1, mt: 4, pid: 9018, tgid: 9018, stackId: 1 }),
  rawRecord({ type: EventType.PageRefMod, tsNs: at(92.678379), pfn: 0x17ac9n, word1: 0x40048n, word2: 0xffff880015a78dc1n, count: 2, mapcount: 1, mt: 4, val: 1, pid: 9018, tgid: 9018 }),
  rawRecord({ type: EventType.TestPagesIsolated, tsNs: at(93.174468), pfn: 0x17800n, word1: 0x17c00n, word2: 0x17ac9n, pid: 9131, tgid: 9131 }),
  rawRecord({ type: EventType.PageRefModAndTest, tsNs: at(93.174843), pfn: 0x17ac9n, word1: 0x40068n, word2: 0xffff880015a78dc1n, count: 0, val: -1, ret: 1, mt: 4, pid: 9018, tgid: 9018, stackId: 2 }),
];

test('the seed example: the exit path released pfn 0x17ac9 after its isolation failed', (t) => {
  const blame = blameJson(analyse(SEED, SEED_STACKS));
  t.is(blame.failures, 1);
  t.is(blame.busyPfns.length, 1);
  const busy = blame.busyPfns[0];
  t.is(busy.pfn, '0x17ac9');
  t.is(busy.count, 2);
  t.is(busy.holders.length, 2, 'the allocation\'s reference and the one taken at 92.678379 were held');
  const mapped = busy.holders.find((h) => h.stack.length === 0);
  t.is(mapped?.pid, 9018);
  t.true(mapped?.certain);
  t.is(mapped?.heldNs, 496_089_000);
  const allocated = busy.holders.find((h) => h.stack[0]?.startsWith('get_page_from_freelist'));
  t.is(allocated?.kind, 'expected');
  t.is(busy.untrackedRefs, 0, 'both references were seen taken');
  t.is(busy.releasers.length, 1);
  const releaser = busy.releasers[0];
  t.is(releaser.pid, 9018);
  t.is(releaser.afterNs, 375_000);
  t.is(releaser.stack[0], 'release_pages+0x254');
  t.is(releaser.releases?.[0], 'get_page_from_freelist+0x?', 'unmapping at exit drops the mapping\'s reference: the allocation\'s');
  t.true(releaser.stack.includes('do_exit+0x2d9'));
  const releasers = blame.byStack.filter((g) => g.role === 'releaser');
  t.deepEqual(releasers.map((g) => [g.frame, g.pages, g.examplePfn]), [['release_pages+0x254', 1, '0x17ac9']]);
  const text = renderBlame(blame);
  t.regex(text, /1 failed isolation tests .* on 1 busy pages/);
  t.regex(text, /released 375 us after the failure by \[9018\] in release_pages\+0x254 <- free_pages_and_swap_cache/);
});

test('a page that was isolated successfully is not blamed', (t) => {
  const records = [
    rawRecord({ type: EventType.PageRefMod, pfn: 0x20000n, val: 1, count: 2, pid: 5, tgid: 5, stackId: 1 }),
    rawRecord({ type: EventType.TestPagesIsolated, pfn: 0x20000n, word1: 0x20200n, word2: 0x20200n }),
    rawRecord({ type: EventType.TestPagesIsolated, pfn: 0x20000n, word1: 0x20200n, word2: 0x20400n }),
  ];
  const blame = blameJson(analyse(records, SEED_STACKS));
  t.is(blame.failures, 0);
  t.is(blame.isolationTests, 2);
  t.deepEqual(blame.busyPfns, []);
  t.regex(renderBlame(blame), /nothing to blame/);
});

test('thousands of failures on many pages group into their few culprit stacks, pins first', (t) => {
  const stacks = {
    10: ['__page_ref_mod+0x12', 'try_grab_folio+0x40', '__get_user_pages+0x1f0', 'iov_iter_get_pages2+0x9', 'vmsplice_to_pipe+0x80'],
    11: ['__page_ref_mod+0x12', 'folio_add_lru+0x2c', 'do_anonymous_page+0x100'],
    12: ['__page_ref_mod_and_test+0x10', 'anon_pipe_buf_release+0x30', 'free_pipe_info+0x50', 'do_exit+0x2e9'],
  };
  const records: Buffer[] = [];
  let ts = BASE;
  for (let page = 0; page < 50; page++) {
    const pfn = BigInt(0x30000 + page);
    records.push(rawRecord({ type: EventType.PageRefMod, tsNs: (ts += 1000n), pfn, val: 1, count: 2, pid: 100, tgid: 100, comm: 'vmsplice-hold', stackId: 10 }));
    if (page % 5 === 0) records.push(rawRecord({ type: EventType.PageRefMod, tsNs: (ts += 1000n), pfn, val: 1, count: 3, pid: 200, tgid: 200, comm: 'bash', stackId: 11 }));
  }
  for (let failure = 0; failure < 5000; failure++) {
    const fin = BigInt(0x30000 + (failure % 50));
    records.push(rawRecord({ type: EventType.TestPagesIsolated, tsNs: (ts += 1000n), pfn: 0x30000n, word1: 0x30200n, word2: fin, pid: 300, tgid: 300 }));
    records.push(rawRecord({ type: EventType.CmaAllocBusyRetry, tsNs: (ts += 10n), pfn: 0x30000n, pid: 300, tgid: 300, name: 'reserved' }));
  }
  for (let page = 0; page < 50; page++) {
    records.push(rawRecord({ type: EventType.PageRefModAndTest, tsNs: (ts += 1000n), pfn: BigInt(0x30000 + page), val: -1, count: 1, pid: 100, tgid: 100, comm: 'vmsplice-hold', stackId: 12 }));
  }
  const blame = blameJson(analyse(records, stacks));
  t.is(blame.failures, 5000);
  t.is(blame.busyRetries, 5000);
  t.is(blame.busyPfns.length, 50);
  t.is(blame.busyPfns.reduce((sum, b) => sum + b.failures, 0), 5000);
  const holders = blame.byStack.filter((g) => g.role === 'holder');
  t.deepEqual(holders.map((g) => [g.kind, g.pages, g.failures, g.comms]), [
    ['pin', 50, 5000, ['vmsplice-hold']],
    ['batch', 10, 1000, ['bash']],
  ]);
  t.is(holders[0].frame, 'try_grab_folio+0x40');
  const releasers = blame.byStack.filter((g) => g.role === 'releaser');
  t.deepEqual(releasers.map((g) => [g.frame, g.pages]), [['anon_pipe_buf_release+0x30', 50]]);
  const text = renderBlame(blame);
  t.regex(text, /Culprit 1: try_grab_folio\+0x40 held 50 busy pages through 5000 failures/);
  t.regex(text, /Culprit 2: folio_add_lru\+0x2c held 10 busy pages/);
});

test('reference kinds and telling frames', (t) => {
  t.is(referenceKind(['__page_ref_mod+0x1', 'try_grab_folio+0x2', 'follow_page_pte+0x3']), 'pin');
  t.is(referenceKind(['__page_ref_mod+0x1', 'filemap_add_folio+0x2']), 'expected');
  t.is(referenceKind(['__page_ref_mod+0x1', 'folio_batch_move_lru+0x2']), 'batch');
  t.is(referenceKind(['__page_ref_mod+0x1', 'some_driver_fn+0x2']), 'other');
  // Inside a long-term pin's fault-in, the LRU batch's and the new page's references are theirs, not pins.
  const faultIn = ['handle_mm_fault+0x5', '__get_user_pages+0x6', 'pin_user_pages_fast+0x7'];
  t.is(referenceKind(['__page_ref_mod+0x1', '__folio_batch_add_and_move+0x2', 'folio_add_lru+0x3', 'do_anonymous_page+0x4', ...faultIn]), 'batch');
  t.is(referenceKind(['__page_ref_set+0x1', 'post_alloc_hook+0x2', 'get_page_from_freelist+0x3', 'do_anonymous_page+0x4', ...faultIn]), 'expected');
  t.is(referenceKind(['__page_ref_mod+0x1', 'try_grab_folio+0x2', 'follow_page_pte+0x3', ...faultIn.slice(1)]), 'pin');
  t.is(tellingFrame(['__page_ref_mod+0x1', 'folio_put+0x9', 'some_driver_fn+0x2']), 'some_driver_fn+0x2');
  t.is(tellingFrame([]), '[no stack]');
});

test('forgetBusy: busy pfns that last failed before the cutoff go, then the longest-ago ones beyond the bound; the totals stay', (t) => {
  const records: Buffer[] = [];
  let ts = BASE;
  for (let page = 0; page < 20; page++) {
    const pfn = BigInt(0x30000 + page);
    records.push(rawRecord({ type: EventType.TestPagesIsolated, tsNs: (ts += 1000n), pfn, word1: pfn + 1n, word2: pfn, pid: 300, tgid: 300 }));
  }
  const analysis = analyse(records, {});
  const failedAt = (page: number) => analysis.busy.get(0x30000 + page)!.lastFailureNs;
  t.is(analysis.busy.size, 20);
  t.is(analysis.forgetBusy(failedAt(5)), 5, 'pages 0 .. 4 failed before the cutoff');
  t.is(analysis.forgetBusy(failedAt(5), 10), 5, 'then 5 .. 9, the longest ago, over the bound of 10');
  t.deepEqual([...analysis.busy.keys()].sort((a, b) => a - b), [...Array(10).keys()].map((i) => 0x3000a + i));
  t.is(analysis.failures, 20);
});
