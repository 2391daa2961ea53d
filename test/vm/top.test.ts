// `pageref top --batch` on real kernels: each test kernel boots once and
// runs test/vm/top-guest.sh, which runs top (as text, then as JSON lines)
// while vm/cma-workload.sh pins 16 pages with vmsplice, makes a CMA
// allocation fail on them and keeps them pinned a few seconds. While they
// are pinned, top's holders view must show the vmsplice GUP path as a
// holder (a pin), and its failures view the pinned pages as busy. Then the
// interactive screen runs live in tmux in the guest.

import test from 'ava';
import type { KernelImage } from '../../src/vm/kernels';
import { forEachKernel, guestFile, oneBootPerKernel } from './guest-runs';
import { parsePinned, unexplainedFailures } from './pinned-failures';

// Two 300 MiB workloads under tracing and the screen: 5 to 7 minutes under TCG on a quiet host, past 10 when it is shared.
const TIMEOUT_SEC = 900;
/** A frame of the path that pins a page for vmsplice. */
const PIN_FRAME = /vmsplice|get_user_pages|pin_user_pages|iov_iter_get_pages|iov_iter_extract|try_grab/;
/**
 * The telling frame of that path, which is all the text view shows: the
 * innermost frame of GUP that is not refcount plumbing (try_get_folio on
 * 6.1, try_grab_folio on 6.12).
 */
const PIN_TELLING_FRAME = /^(try_grab|try_get_folio|gup_|__gup|get_user_pages|pin_user_pages|iov_iter_get_pages|iov_iter_extract|vmsplice)/;
const guestRun = oneBootPerKernel('sh test/vm/top-guest.sh', TIMEOUT_SEC);

/** The batch text split into snapshots, each from its header line on. */
function snapshots(text: string): string[] {
  return text.split(/\n(?=pageref top - live)/).filter((s) => s.startsWith('pageref top - live'));
}

interface TopLine {
  time: number;
  source: string;
  dropped: number;
  ringFill: number | null;
  isolationFailures: number;
  eventsPerSec: Record<string, number>;
  pages: { pfn: string; migrateType: string | null }[];
  holders: { frame: string; kind: string; stack: string[]; pages: number; comms: string[]; examplePfn: string }[];
  failures: { pfn: string; failures: number; culprit: { kind: string; frame: string; comm: string } | null }[];
  culprits: { frame: string; kind: string; pages: number }[];
}

forEachKernel('top', registerTopTests);

function registerTopTests(kernel: KernelImage): void {
  const name = kernel.name;

  test(`${name}: top --batch --view holders shows the vmsplice pin while the pages are pinned`, async (t) => {
    const run = await guestRun(kernel);
    t.deepEqual(run.preconditions, []);
    t.regex(guestFile(run, 'holders.log'), /^pageref top: attached \d+ programs/m);
    t.is(guestFile(run, 'holders-workload.rc').trim(), '0', guestFile(run, 'holders-workload.log'));
    t.is(guestFile(run, 'holders.rc').trim(), '0', guestFile(run, 'holders.log'));
    const shots = snapshots(guestFile(run, 'holders.out'));
    t.log(`${name}: ${shots.length} snapshots`);
    t.true(shots.length >= 3, guestFile(run, 'holders.out').slice(0, 2000));
    // A holders row: KIND PAGES REFS PROCS OLDEST EXAMPLE COMMS STACK (the telling frame, last).
    const pinRows = shots.flatMap((s) =>
      s.split('\n').filter((l) => {
        const words = l.split(/ +/);
        return words[0] === 'pin' && words.length >= 8 && words[6].split(',').includes('vmsplice-hold') && PIN_TELLING_FRAME.test(words[words.length - 1]);
      }),
    );
    t.true(pinRows.length >= 2, `no vmsplice pin in the holders view:\n${shots[shots.length - 1]}`);
    t.log(pinRows[0]);
    const pages = Math.max(...pinRows.map((l) => Number(l.split(/ +/)[1])));
    t.true(pages >= 16, `the pin row holds ${pages} pages; the workload pinned 16`);
    t.true(shots.some((s) => /^Holders \(by stack\): \d+ of \d+ +sort kind↑/m.test(s) && /Isolation failures [1-9]\d* /.test(s)), 'a snapshot after the failed allocation');
    t.true(shots.every((s) => /^Dropped \d+ /m.test(s)), 'the drops are always shown');
    t.true(shots.every((s) => /^Dropped .* {2}Ring (\d+(\.\d)?%|<0\.1%) {2}/m.test(s)), `live, the ring buffer's fill is shown:\n${shots[0]}`);
  });

  test(`${name}: top --json: the pin among the holders with its stack, the pinned pages busy, the pin the culprit`, async (t) => {
    const run = await guestRun(kernel);
    t.is(guestFile(run, 'json-workload.rc').trim(), '0', guestFile(run, 'json-workload.log'));
    t.is(guestFile(run, 'json.rc').trim(), '0', guestFile(run, 'json.log'));
    const lines: TopLine[] = guestFile(run, 'json.out').trim().split('\n').map((l) => JSON.parse(l));
    t.true(lines.length >= 3);
    t.true(lines.every((l) => l.source === 'live'));
    // The holder's pins and releases: it faulted its memory in before top started.
    t.true(lines.some((l) => Object.entries(l.eventsPerSec).some(([event, rate]) => event.startsWith('page_ref_') && rate > 0)), 'no page_ref event rate');
    const pinned = parsePinned(guestFile(run, 'json-pinned.txt'));
    t.is(pinned.size, 16, guestFile(run, 'json-workload.log'));
    const during = lines.filter((l) => l.holders.some((h) => h.kind === 'pin' && h.comms.includes('vmsplice-hold') && h.stack.some((f) => PIN_FRAME.test(f))));
    t.true(during.length >= 2, `holders of the last snapshot: ${JSON.stringify(lines[lines.length - 1].holders.slice(0, 3))}`);
    const pin = during[during.length - 1].holders.find((h) => h.kind === 'pin' && h.comms.includes('vmsplice-hold'))!;
    t.log(`${name}: pin ${pin.frame}, ${pin.pages} pages, e.g. ${pin.examplePfn}: ${pin.stack.slice(0, 8).join(' < ')}`);
    const last = lines[lines.length - 1];
    t.true(last.isolationFailures >= 1);
    t.is(unexplainedFailures(last.failures.map((f) => [Number(f.pfn), f.failures] as const), pinned), null, 'the pinned pages are the busy ones');
    t.is(last.failures[0].culprit?.kind, 'pin');
    t.is(last.failures[0].culprit?.comm, 'vmsplice-hold');
    t.is(last.culprits[0].kind, 'pin');
    t.true(PIN_TELLING_FRAME.test(last.culprits[0].frame), last.culprits[0].frame);
    t.is(last.dropped, 0, 'records were dropped');
    // Live top attaches by perf tracepoint, which computes the migrate type
    // (tp_btf does not: null): every page row has one.
    const pageRows = lines.flatMap((l) => l.pages);
    t.true(pageRows.length > 0, 'no page rows');
    const migrateTypes = new Set(pageRows.map((p) => p.migrateType));
    t.log(`${name}: migrate types of the page rows: ${[...migrateTypes].join(' ')}`);
    t.deepEqual([...migrateTypes].filter((mt) => !['unmovable', 'movable', 'reclaimable', 'highatomic', 'cma', 'isolate'].includes(mt ?? 'null')), [], 'migrate types of the page rows');
    // The fill is the fullest the ring was before a drain in the interval: read from the kernel's positions.
    const fills = lines.map((l) => l.ringFill);
    t.log(`${name}: ring fill per snapshot ${fills.join(' ')}`);
    t.true(fills.every((f) => typeof f === 'number' && f >= 0 && f < 1), `fills ${fills.join(' ')}: a number from 0 to 1, and short of full with nothing dropped`);
    // The holder's pins are page_ref records in the first snapshots' intervals, so drains found some pending.
    t.true(fills.some((f) => f! > 0), `fills ${fills.join(' ')}: never anything pending before a drain`);
    t.notRegex(guestFile(run, 'bpf-progs-after.txt'), /tracepoint|tracing/, 'a BPF program is still loaded after top exited');
  });

  test(`${name}: the interactive screen, live in tmux: the pages view, the key 2 for holders, q leaves the alternate screen`, async (t) => {
    const run = await guestRun(kernel);
    t.regex(guestFile(run, 'screen-top.log'), /^pageref top: attached \d+ programs/m);
    t.is(guestFile(run, 'screen-alternate-during.txt').trim(), '1', 'top draws on the alternate screen');
    const pages = guestFile(run, 'screen-pages.txt');
    t.regex(pages, /^pageref top - live on .* kernel \d+\.\d+/m, pages);
    t.regex(pages, /^Events\/s \d/m);
    // Drawing never holds up draining: the screen costs no record.
    t.regex(pages, /^Dropped 0 /m, pages);
    t.regex(pages, /^PFN +REF +MAP +NET↓ .*TOP HOLDER$/m, pages);
    t.regex(pages, /^0x[0-9a-f]+ /m, 'no page rows');
    t.regex(pages, /^q quit +\? help/m);
    const holders = guestFile(run, 'screen-holders.txt');
    t.regex(holders, /^Holders \(by stack\): \d+ of \d+ +sort pages↓/m, holders);
    t.regex(holders, /^KIND +PAGES↓ +REFS/m);
    t.regex(holders, /^Dropped 0 /m, holders);
    t.is(guestFile(run, 'screen.rc').trim(), '0', guestFile(run, 'screen-top.log'));
    t.is(guestFile(run, 'screen-alternate-after.txt').trim(), '0', 'q left the alternate screen');
    t.false(/^PFN /m.test(guestFile(run, 'screen-after.txt')), 'nothing of top is left on the main screen');
  });
}
