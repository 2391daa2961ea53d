import test from 'ava';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { EventType } from '../src/record/event-types';
import { EVENT_NAMES } from '../src/record/event-types';
import { lines, pageref } from './helpers/cli';
import { tempPath, writeCapture } from './helpers/capture';
import { rawRecord } from './helpers/records';

const usageErrors: [string, string[], RegExp][] = [
  ['unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
  ['unknown option', ['report', 'x.pgref', '--colour'], /unknown option '--colour'/],
  ['report without a file', ['report'], /missing required argument 'file'/],
  ['record without an output', ['record'], /required option '-o, --output <file>' not specified/],
  ['a pfn range that is not one', ['record', '-o', '/nonexistent/x', '--pfn', '0x100'], /--pfn: "0x100" is not a range START-END/],
  ['a backwards pfn range', ['record', '-o', '/nonexistent/x', '--pfn', '0x200-0x100'], /must be above its start/],
  ['a pid that is not a number', ['record', '-o', '/nonexistent/x', '--pid', 'init'], /--pid: "init" is not a non-negative integer/],
  ['a comm longer than the kernel keeps', ['record', '-o', '/nonexistent/x', '--comm', 'a-very-long-task-name'], /must be 1 to 15 bytes/],
  ['a zero duration', ['record', '-o', '/nonexistent/x', '--duration', '0'], /--duration: "0" is not a positive number/],
  ['a size that is not one', ['record', '-o', '/nonexistent/x', '--buffer-size', 'big'], /--buffer-size: "big" is not a size/],
  ['a top count that is not a number', ['report', 'x.pgref', '--top', 'ten'], /--top: "ten" is not a non-negative integer/],
  ['a duration with a capture file', ['blame', 'x.pgref', '--duration', '5'], /--duration and --buffer-size are for live blame, not for a capture file/],
  ['a bad live blame duration', ['blame', '--duration', 'soon'], /--duration: "soon" is not a positive number/],
  ['a ring buffer that is not a power of two', ['record', '-o', '/nonexistent/x', '--buffer-size', '5000'], /buffer size 5000 must be a power of two/],
  ['a live blame ring buffer that is not a power of two', ['blame', '--buffer-size', '3M'], /buffer size 3145728 must be a power of two/],
  ['a stack map that is too large', ['record', '-o', '/nonexistent/x', '--stack-entries', '99999999'], /stack entries 99999999 must be/],
  ['a max-drops that is not a number', ['record', '-o', '/nonexistent/x', '--max-drops', 'many'], /--max-drops: "many" is not a non-negative integer/],
  ['an unknown attach mode', ['record', '-o', '/nonexistent/x', '--attach', 'kprobe'], /--attach: "kprobe" must be one of auto, btf, tracepoint/],
  ['an unknown stacks mode', ['record', '-o', '/nonexistent/x', '--stacks', 'some'], /--stacks: "some" must be one of all, sampled, armed, none/],
  ['a pfn sample of 0', ['record', '-o', '/nonexistent/x', '--sample-pfn', '0'], /--sample-pfn: "0" must be from 1 to/],
  ['an event sample that is not a number', ['record', '-o', '/nonexistent/x', '--sample-events', 'half'], /--sample-events: "half" is not a non-negative integer/],
  ['more pfn ranges than the kernel side takes', ['record', '-o', '/nonexistent/x', ...Array.from({ length: 17 }, (_, i) => ['--pfn', `${i * 10}-${i * 10 + 1}`]).flat()], /--pfn: at most 16 ranges/],
  ['a --max-pfns of 0 for report', ['report', 'x.pgref', '--max-pfns', '0'], /--max-pfns: "0" must be from 1 to/],
  ['a --max-pfns that is not a number for blame', ['blame', 'x.pgref', '--max-pfns', 'lots'], /--max-pfns: "lots" is not a non-negative integer/],
  ['a --max-pfns of 0 for export', ['export', 'x.pgref', '--pprof', '/nonexistent/p.pb.gz', '--max-pfns', '0'], /--max-pfns: "0" must be from 1 to/],
  ['a --max-pfns beyond 2^32 - 1 for top', ['top', '--replay', 'x.pgref', '--max-pfns', '5000000000'], /--max-pfns: "5000000000" must be from 1 to/],
  ['a misspelled option, the suggestion on the same line', ['report', 'x.pgref', '--jsn'], /unknown option '--jsn' \(Did you mean --json\?\)$/m],
  ['a misspelled command, the suggestion on the same line', ['reprot', 'x.pgref'], /unknown command 'reprot' \(Did you mean report\?\)$/m],
  ['help for a command that does not exist', ['help', 'bogus'], /^pageref: unknown command 'bogus'$/m],
  ['--stacks sampled with --no-stacks', ['record', '-o', '/nonexistent/x', '--stacks', 'sampled', '--no-stacks'], /--stacks sampled and --no-stacks: give one stacks mode/],
  ['--no-stacks with --stacks all', ['record', '-o', '/nonexistent/x', '--no-stacks', '--stacks', 'all'], /--no-stacks and --stacks all: give one stacks mode/],
  ['two different --stacks modes', ['top', '--stacks', 'none', '--stacks', 'armed'], /--stacks none and --stacks armed: give one stacks mode/],
  ['--no-stacks with --stacks for serve', ['serve', '--no-stacks', '--stacks', 'armed'], /--no-stacks and --stacks armed: give one stacks mode/],
  ['--stack-sample without --stacks sampled', ['record', '-o', '/nonexistent/x', '--stack-sample', '8'], /--stack-sample is for --stacks sampled \(stacks here: all\)/],
  ['--stack-sample with serve\'s armed stacks', ['serve', '--stack-sample', '8'], /--stack-sample is for --stacks sampled \(stacks here: armed\)/],
  ['--stack-entries with --no-stacks', ['record', '-o', '/nonexistent/x', '--no-stacks', '--stack-entries', '1024'], /--stack-entries sizes the stack map, which --stacks none does not have/],
  ['--pfn-tracks without --perfetto', ['export', 'x.pgref', '--pprof', '/nonexistent/p.pb.gz', '--pfn-tracks', '5'], /--pfn-tracks is for --perfetto/],
  ['an import --kernel that is no release', ['import', '-', '-o', '/nonexistent/x', '--kernel', 'bogus'], /--kernel: "bogus" is not a kernel release/],
  ['export --kernel, an option export does not have', ['export', 'x.pgref', '--pprof', '/nonexistent/p.pb.gz', '--kernel', 'bogus'], /unknown option '--kernel'/],
  ['aggregated ranges larger than --max-pfns', ['record', '-o', '/nonexistent/x', '--aggregate', '--max-pfns', '100', '--pfn', '0x1000-0x2000'], /the pfn ranges hold 4096 pfns, more than --max-pfns 100/],
];

for (const [what, args, message] of usageErrors) {
  test(`usage error: ${what} is one line and exit status 2`, (t) => {
    const run = pageref(args);
    t.is(run.status, 2, run.stderr);
    t.is(lines(run.stderr).length, 1, run.stderr);
    t.regex(run.stderr, /^pageref: /);
    t.regex(run.stderr, message);
  });
}

test('the stacks modes that agree still run: --stacks sampled --stack-sample N, --no-stacks twice', (t) => {
  // Past the option checks, record stops at the kernel check (this kernel has no page_ref): exit 1, not 2.
  for (const args of [['--stacks', 'sampled', '--stack-sample', '8'], ['--no-stacks', '--no-stacks'], ['--stacks', 'none', '--stacks', 'none']]) {
    const run = pageref(['record', '-o', tempPath('agree.pgref'), '--duration', '1', ...args]);
    t.is(run.status, 1, `${args.join(' ')}: ${run.stderr}`);
    t.regex(run.stderr, /page_ref events/);
  }
});

test('pageref help and help COMMAND print the help on stdout, exit 0', (t) => {
  const all = pageref(['help']);
  t.is(all.status, 0);
  t.regex(all.stdout, /^Usage: pageref /);
  const report = pageref(['help', 'report']);
  t.is(report.status, 0);
  t.regex(report.stdout, /^Usage: pageref report /);
});

test('export --perfetto and --pprof naming one file, or the capture itself: a usage error before anything is written', (t) => {
  const capture = tempPath('same-out.pgref');
  writeCapture(capture, [rawRecord({ type: EventType.PageRefMod, pfn: 0x17ac9n, val: 1, count: 2, stackId: 1 })]);
  const before = readFileSync(capture);
  const out = tempPath('same-out.bin');
  const same = pageref(['export', capture, '--perfetto', out, '--pprof', out]);
  t.is(same.status, 2, same.stderr);
  t.deepEqual(lines(same.stderr), [`pageref: --pprof and --perfetto both name ${out}: give each its own file`]);
  t.false(existsSync(out));
  const overInput = pageref(['export', capture, '--pprof', capture, '--force']);
  t.is(overInput.status, 2, overInput.stderr);
  t.deepEqual(lines(overInput.stderr), [`pageref: ${capture} is the capture being exported: write to another file`]);
  t.deepEqual(readFileSync(capture), before);
});

test('import -o naming the text being imported: a usage error, the text untouched', (t) => {
  const text = tempPath('self.txt');
  writeFileSync(text, 'precious text\n');
  const run = pageref(['import', text, '-o', text, '--force']);
  t.is(run.status, 2, run.stderr);
  t.is(lines(run.stderr).length, 1, run.stderr);
  t.is(readFileSync(text, 'utf8'), 'precious text\n');
});

test('report on a missing file or a file that is not a capture: one line, exit 1', (t) => {
  const missing = pageref(['report', '/nonexistent/capture.pgref']);
  t.is(missing.status, 1);
  t.deepEqual(lines(missing.stderr), ['pageref: cannot open /nonexistent/capture.pgref: ENOENT']);
  const text = tempPath('text.pgref');
  writeFileSync(text, 'not a capture');
  const notCapture = pageref(['report', text]);
  t.is(notCapture.status, 1);
  t.deepEqual(lines(notCapture.stderr), [`pageref: ${text} is not a pageref capture`]);
});

test('a directory given as a capture: one line naming it, exit 1, for report, blame, export and top --replay', (t) => {
  const dir = tempPath('a-folder.pgref');
  mkdirSync(dir);
  const pprof = tempPath('from-folder.pb.gz');
  for (const args of [['report', dir], ['blame', dir], ['export', dir, '--pprof', pprof], ['top', '--replay', dir]]) {
    const run = pageref(args);
    t.is(run.status, 1, `${args[0]}: ${run.stderr}`);
    t.deepEqual(lines(run.stderr), [`pageref: ${dir} is a directory, not a pageref capture`], args[0]);
  }
  t.false(existsSync(pprof));
});

test('record refuses to overwrite an existing file, and leaves it alone', (t) => {
  const path = tempPath('keep.pgref');
  writeFileSync(path, 'precious');
  const run = pageref(['record', '-o', path, '--duration', '1']);
  t.is(run.status, 2);
  t.regex(run.stderr, /exists; pass --force/);
});

test('report --json follows the documented contract', (t) => {
  const path = tempPath('contract.pgref');
  writeCapture(path, [
    rawRecord({ type: EventType.PageRefMod, pfn: 0x17ac9n, val: 1, count: 2 }),
    rawRecord({ type: EventType.PageRefMod, pfn: 0x17ac9n, val: 1, count: 3 }),
    rawRecord({ type: EventType.PageRefModAndTest, pfn: 0x17ac9n, val: -1, count: 2 }),
    rawRecord({ type: EventType.PageRefSet, pfn: 0x20000n, val: 1, count: 1 }),
    rawRecord({ type: EventType.CmaAllocBusyRetry, pfn: 0x17800n, word1: 1024n, name: 'reserved' }),
  ]);
  const run = pageref(['report', path, '--json']);
  t.is(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  t.is(report.kernel.release, '6.1.192');
  t.deepEqual(Object.keys(report.events), [...EVENT_NAMES]);
  t.deepEqual(report.evicted, { maxPfns: 4 * 1024 * 1024, pfns: 0, events: 0, gets: 0, puts: 0 });
  t.is(report.events.page_ref_mod, 2);
  t.is(report.events.cma_alloc_busy_retry, 1);
  t.is(report.dropped, 2);
  t.is(report.pfns, 2);
  t.deepEqual(report.top[0], { pfn: '0x17ac9', gets: 2, puts: 1, net: 1, events: 3 });
  t.deepEqual(report.top[1], { pfn: '0x20000', gets: 0, puts: 0, net: 0, events: 1 });
  t.is(report.cma.busyRetries, 1);
  const text = pageref(['report', path]);
  t.is(text.status, 0);
  t.regex(text.stdout, /DROPPED: 2 records were lost/);
  t.regex(text.stdout, /0x17ac9 +2 +1 +1 +3/);
});

test('report and blame on a sampled, aggregated capture say what it could not see, and scale estimates', (t) => {
  const path = tempPath('sampled.pgref');
  // 0x17ac9 is outside a 1-in-8 pfn sample (pfnSampledIn(0x17ac9, 8) is false): its failure cannot be explained.
  writeCapture(path, [rawRecord({ type: EventType.TestPagesIsolated, tsNs: 1_000_002_000n, pfn: 0x17800n, word1: 0x17c00n, word2: 0x17ac9n, pid: 9131, tgid: 9131 })], {
    recordOptions: { samplePfn: 8, aggregateSlots: 4096, stacksMode: 'armed', pfnRanges: [{ start: 0x17000, end: 0x18000 }] },
    pfnCounts: [
      { pfn: [0x17000, 0x17001], gets: [3, 1], puts: [1, 1], events: [5, 2], lastCount: [3, 1], lastTsNs: [100, 200] },
      { pfn: [0x17000], gets: [1], puts: [0], events: [1], lastCount: [4], lastTsNs: [300] },
    ],
  });
  const report = JSON.parse(pageref(['report', path, '--json']).stdout);
  t.deepEqual(report.sampling, { pfn: 8, events: 1, scale: 8, estimated: true });
  t.is(report.aggregatedEvents, 8);
  t.is(report.estimatedPageRefEvents, 64);
  t.deepEqual(report.top[0], { pfn: '0x17000', gets: 4, puts: 1, net: 3, events: 6 });
  t.true(report.limits.some((l: string) => /1 in 8 pfns/.test(l)));
  t.true(report.limits.some((l: string) => /--aggregate/.test(l)));
  t.true(report.limits.some((l: string) => /armed/.test(l)));
  const text = pageref(['report', path]).stdout;
  t.regex(text, /ESTIMATE: about 64 page_ref events on all pages/);
  const blame = JSON.parse(pageref(['blame', path, '--json']).stdout);
  t.false(blame.busyPfns[0].sampled);
  t.deepEqual(blame.recording, { stacksMode: 'armed', samplePfn: 8, sampleEvents: 1, aggregated: true, rawPointers: false });
  const blameText = pageref(['blame', path]).stdout;
  t.regex(blameText, /1 of the 1 busy pages are outside the pfn sample/);
  t.regex(blameText, /with --stacks armed a page is recorded only from the first failed isolation/);
});

test('on this machine\'s kernel (no page_ref tracepoints) record fails at once with the doctor\'s explanation and writes nothing', (t) => {
  const path = tempPath('never.pgref');
  const run = pageref(['record', '-o', path, '--duration', '1']);
  t.is(run.status, 1, run.stderr);
  t.is(lines(run.stderr).length, 1, run.stderr);
  t.regex(run.stderr, /page_ref events: kernel .* has no page_ref tracepoints .*remedy: boot a kernel built with CONFIG_DEBUG_PAGE_REF=y/);
  t.false(existsSync(path));
});

test('doctor on this machine\'s kernel says page_ref is missing, with the remedy, and exits 1', (t) => {
  const run = pageref(['doctor', '--json']);
  t.is(run.status, 1);
  const report = JSON.parse(run.stdout);
  t.false(report.ok);
  t.is(report.debugPageRef, 'n');
  const check = report.checks.find((c: { name: string }) => c.name === 'page_ref events');
  t.is(check.status, 'fail');
  t.regex(check.remedy, /CONFIG_DEBUG_PAGE_REF=y/);
  t.is(report.checks.find((c: { name: string }) => c.name === 'btf').status, 'ok');
  for (const name of EVENT_NAMES.filter((n) => n.startsWith('page_ref_'))) t.true(report.events.missing.includes(name));
  const text = pageref(['doctor']);
  t.regex(text.stdout, /\[FAIL\] page_ref events/);
  t.regex(text.stdout, /remedy: boot a kernel built with CONFIG_DEBUG_PAGE_REF=y/);
});

test('blame --json on a capture follows the documented contract', (t) => {
  const path = tempPath('blame.pgref');
  writeCapture(path, [
    rawRecord({ type: EventType.PageRefMod, tsNs: 1_000_001_000n, pfn: 0x17ac9n, val: 1, count: 2, pid: 9018, tgid: 9018, comm: 'holder', stackId: 1 }),
    rawRecord({ type: EventType.TestPagesIsolated, tsNs: 1_000_002_000n, pfn: 0x17800n, word1: 0x17c00n, word2: 0x17ac9n, pid: 9131, tgid: 9131 }),
    rawRecord({ type: EventType.PageRefModAndTest, tsNs: 1_000_005_000n, pfn: 0x17ac9n, val: -1, count: 1, ret: 0, pid: 9018, tgid: 9018, comm: 'holder', stackId: 2 }),
  ]);
  const run = pageref(['blame', path, '--json']);
  t.is(run.status, 0, run.stderr);
  const blame = JSON.parse(run.stdout);
  t.is(blame.failures, 1);
  t.deepEqual(Object.keys(blame.busyPfns[0]).sort(), ['count', 'failures', 'holders', 'mapcount', 'pfn', 'releasers', 'sampled', 'untrackedRefs']);
  t.deepEqual(blame.limits, [], 'a full capture has no limits');
  t.deepEqual(blame.evicted, { maxPfns: 4 * 1024 * 1024, pfns: 0, events: 0, outstandingRefs: 0 });
  t.deepEqual(blame.recording, { stacksMode: 'all', samplePfn: 1, sampleEvents: 1, aggregated: false, rawPointers: false });
  t.true(blame.busyPfns[0].sampled);
  t.is(blame.busyPfns[0].pfn, '0x17ac9');
  t.deepEqual(blame.busyPfns[0].holders, [{ stack: ['__page_ref_mod+0x12', 'try_grab_page+0x40', 'follow_page_pte+0x1f0'], kind: 'pin', comm: 'holder', pid: 9018, refs: 1, heldNs: 1000, certain: true }]);
  t.deepEqual(blame.busyPfns[0].releasers, [
    { stack: ['__page_ref_mod_and_test+0x10', 'release_pages+0x1a4', 'do_exit+0x2e9'], comm: 'holder', pid: 9018, refs: 1, afterNs: 3000, releases: ['__page_ref_mod+0x12', 'try_grab_page+0x40', 'follow_page_pte+0x1f0'] },
  ]);
  t.deepEqual(
    blame.byStack.map((g: { role: string; kind: string; pages: number; failures: number; examplePfn: string; comms: string[] }) => [g.role, g.kind, g.pages, g.failures, g.examplePfn, g.comms]),
    [
      ['holder', 'pin', 1, 1, '0x17ac9', ['holder']],
      ['releaser', 'batch', 1, 1, '0x17ac9', ['holder']],
    ],
  );
  const text = pageref(['blame', path]);
  t.is(text.status, 0);
  t.regex(text.stdout, /Culprit 1: try_grab_page\+0x40 held 1 busy page through 1 failure\n/);
});

test('live blame on this machine\'s kernel fails at once with the doctor\'s explanation', (t) => {
  const run = pageref(['blame', '--duration', '1']);
  t.is(run.status, 1);
  t.regex(run.stderr, /^pageref blame: page_ref events: .*remedy/);
});

/** A capture of `pfns` pages far apart, each taking a reference, the later ones dropping it again (so they hold nothing). */
function manyPfnCapture(name: string, pfns: number): string {
  const path = tempPath(name);
  const records: Buffer[] = [];
  for (let i = 0; i < pfns; i++) {
    const pfn = BigInt(0x100000 + i * 512);
    records.push(rawRecord({ type: EventType.PageRefMod, pfn, val: 1, count: 2, tsNs: BigInt(1_000_000_000 + i * 1000), stackId: 1, pid: 7, tgid: 7 }));
    if (i >= 10) records.push(rawRecord({ type: EventType.PageRefModAndTest, pfn, val: -1, count: 1, tsNs: BigInt(1_000_000_000 + i * 1000 + 500), stackId: 2, pid: 7, tgid: 7 }));
  }
  writeCapture(path, records, { perBatch: 64 });
  return path;
}

test('report of a capture with more pfns than --max-pfns states the evictions, in text and JSON', (t) => {
  const path = manyPfnCapture('evict.pgref', 3000);
  const json = pageref(['report', path, '--json', '--max-pfns', '1000']);
  t.is(json.status, 0, json.stderr);
  const report = JSON.parse(json.stdout);
  t.true(report.pfns <= 1000);
  t.is(report.evicted.maxPfns, 1000);
  t.is(report.evicted.pfns, 3000 - report.pfns);
  // Every evicted pfn had its get, and all but the first ten their put too.
  t.is(report.evicted.gets, report.evicted.pfns);
  t.true(report.evicted.events >= 2 * report.evicted.pfns - 10);
  t.true(report.limits.some((l: string) => l.includes(`${report.evicted.pfns} pfns`) && l.includes('--max-pfns 1000')));
  const text = pageref(['report', path, '--max-pfns', '1000']);
  t.is(text.status, 0, text.stderr);
  t.regex(text.stdout, new RegExp(`^EVICTED: ${report.evicted.pfns} pfns \\(\\d+ events\\) were forgotten to keep per-pfn state within --max-pfns 1000`, 'm'));
  // The default bound holds them all, and says nothing of evictions.
  const whole = JSON.parse(pageref(['report', path, '--json']).stdout);
  t.is(whole.pfns, 3000);
  t.is(whole.evicted.pfns, 0);
  t.false(pageref(['report', path]).stdout.includes('EVICTED'));
});

test('blame of a capture with more pages than --max-pfns keeps the held ones and states the evictions', (t) => {
  const path = manyPfnCapture('evict-blame.pgref', 3000);
  const run = pageref(['blame', path, '--json', '--max-pfns', '1000']);
  t.is(run.status, 0, run.stderr);
  const blame = JSON.parse(run.stdout);
  t.true(blame.evicted.pfns >= 2000);
  // The ten pages still holding their reference are never the ones evicted.
  t.is(blame.evicted.outstandingRefs, 0);
  t.true(blame.limits.some((l: string) => l.startsWith(`evicted: ${blame.evicted.pfns} pfns`)));
  const text = pageref(['blame', path, '--max-pfns', '1000']);
  t.regex(text.stdout, new RegExp(`^WARNING: ${blame.evicted.pfns} pfns .*--max-pfns 1000`, 'm'));
});

test('export with --max-pfns below a capture\'s pfns notes the evictions in the Perfetto limits and the pprof comments', (t) => {
  const path = manyPfnCapture('evict-export.pgref', 3000);
  const perfetto = tempPath('evict.perfetto');
  const pprof = tempPath('evict.pb.gz');
  const run = pageref(['export', path, '--perfetto', perfetto, '--pprof', pprof, '--max-pfns', '1000', '--json']);
  t.is(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  t.true(result.perfetto.limits.some((l: string) => /^evicted: \d+ pfns .*--max-pfns 1000/.test(l)));
  t.true(result.pprof.comments.some((l: string) => /^evicted: \d+ pfns .*--max-pfns 1000/.test(l)));
});
