// `pageref top` as a user runs it without a terminal: --batch text and
// --json lines over a capture, the pace of --speed, usage errors, and live
// top on this machine's kernel (no page_ref tracepoints).

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { EVENT_NAMES } from '../src/record/event-types';
import { lines, PAGEREF, pageref } from './helpers/cli';
import { topCapture as capture } from './helpers/top-capture';

const headers = (text: string) => text.split('\n').filter((l) => l.startsWith('pageref top - replay'));

test('--batch N prints N plain-text snapshots, one per interval of capture time, like top -b', (t) => {
  const path = capture();
  const run = pageref(['top', '--replay', path, '--speed', '0', '--batch', '2']);
  t.is(run.status, 0, run.stderr);
  t.is(run.stderr, '');
  t.is(headers(run.stdout).length, 2);
  t.regex(run.stdout, /up 0:00:01 .*\n[^]*up 0:00:02 /);
  t.regex(run.stdout, /^Pages: \d+ of 5 +sort net↓ +filter none$/m);
  t.regex(run.stdout, /^PFN +REF +MAP +NET↓ +GETS\/s +PUTS\/s +AGE +EVENTS +MT +FLAGS +TOP HOLDER$/m);
  t.regex(run.stdout, /^0x17ac9 +2 +1 +1 +0 +0 +1\.9s +1 +cma +locked +holder\[9018\] try_grab_page\+0x40 \(pin\)$/m);
  t.regex(run.stdout, /^Dropped 0 \(0\/s\) +Isolation failures 1 \(1\.0\/s\)/m, 'the second interval holds the failure');
});

test('a replay stops at the end of its capture with a last snapshot; --batch alone and a pipe print one', (t) => {
  const path = capture();
  const all = pageref(['top', '--replay', path, '--speed', 'max', '--batch', '10']);
  t.is(all.status, 0, all.stderr);
  const seen = headers(all.stdout);
  t.is(seen.length, 3, 'two whole seconds, then the last half second');
  t.regex(seen[2], /, end of capture /);
  t.regex(all.stdout, /Dropped 2 \(\d+(\.\d)?\/s\) !/, 'the trailer\'s drops, marked');
  t.is(headers(pageref(['top', '--replay', path, '--speed', '0', '--batch']).stdout).length, 1);
  t.is(headers(pageref(['top', '--replay', path, '--speed', '0']).stdout).length, 1, 'stdout is not a terminal: one snapshot');
});

test('--view holders and --view failures in batch text; --filter and --sort apply', (t) => {
  const path = capture();
  const holders = pageref(['top', '--replay', path, '--speed', '0', '--batch', '2', '--view', 'holders']);
  t.is(holders.status, 0, holders.stderr);
  t.regex(holders.stdout, /^KIND +PAGES↓ +REFS +PROCS +OLDEST +EXAMPLE +COMMS +STACK \(telling frame\)$/m);
  t.regex(holders.stdout, /^pin +1 +1 +1 +1\.9s 0x17ac9 +holder +try_grab_page\+0x40$/m);
  const failures = pageref(['top', '--replay', path, '--speed', '0', '--batch', '2', '--view', 'failures']);
  t.regex(failures.stdout, /^Culprits: try_grab_page\+0x40 \(pin\) 1 page, 1 failure$/m);
  t.regex(failures.stdout, /^0x17ac9 +1 +1 +2 +1\.4s .* holder\[9018\] try_grab_page\+0x40 \(pin\)$/m);
  const filtered = pageref(['top', '--replay', path, '--speed', '0', '--filter', '0x20000-0x20002', '--sort', 'pfn']);
  const rows = filtered.stdout.split('\n').filter((l) => /^0x/.test(l)).map((l) => l.split(' ')[0]);
  t.deepEqual(rows, ['0x20000', '0x20001']);
  t.regex(filtered.stdout, /filter 0x20000-0x20002/);
});

test('--json prints one JSON line per snapshot with every view, as the README documents', (t) => {
  const path = capture();
  const run = pageref(['top', '--replay', path, '--speed', '0', '--json', '--batch', '3', '--rows', '2', '--sort', 'age']);
  t.is(run.status, 0, run.stderr);
  const snapshots = run.stdout.trim().split('\n').map((line) => JSON.parse(line));
  t.is(snapshots.length, 3);
  const [first, second, last] = snapshots;
  t.deepEqual(Object.keys(first), [
    'time', 'source', 'kernel', 'speed', 'ended', 'intervalSec', 'eventsPerSec', 'aggregatedPerSec', 'isolationFailures', 'isolationFailuresPerSec',
    'cmaRetries', 'cmaRetriesPerSec', 'failedAllocations', 'pfns', 'maxPfns', 'evictedPfns', 'evictedRatePfns', 'evictedHoldPfns', 'evictedOutstandingRefs', 'dropped', 'droppedPerSec', 'stackLost', 'sampledOut', 'aggregateOverflow', 'ringFill', 'cpuPercent', 'stacksMode', 'aggregated', 'sampling',
    'file', 'pages', 'holders', 'failures', 'culprits',
  ]);
  t.deepEqual([first.time, second.time, last.time], [1, 2, 2.4]);
  t.is(first.source, 'replay');
  t.is(first.speed, 0);
  t.is(first.ended, null);
  t.is(last.ended, 'end of capture');
  t.deepEqual(Object.keys(first.eventsPerSec), [...EVENT_NAMES]);
  t.is(first.ringFill, null);
  t.is(typeof first.cpuPercent, 'number');
  t.is(first.pages.length, 2, '--rows');
  t.deepEqual(first.pages[0], {
    pfn: '0x17ac9', refcount: 2, mapcount: 1, net: 1, events: 1, getsPerSec: 1, putsPerSec: 0, holds: 1,
    flags: ['locked'], migrateType: 'cma', holder: { comm: 'holder', pid: 9018, frame: 'try_grab_page+0x40', kind: 'pin' }, oldestHoldNs: 900_000_000,
  });
  t.deepEqual(first.holders.find((h: { kind: string }) => h.kind === 'pin'), {
    frame: 'try_grab_page+0x40', kind: 'pin', stack: ['__page_ref_mod+0x12', 'try_grab_page+0x40', 'follow_page_pte+0x1f0'],
    pages: 1, refs: 1, processes: 1, comms: ['holder'], oldestHoldNs: 900_000_000, examplePfn: '0x17ac9',
  });
  t.deepEqual(first.holders.find((h: { kind: string }) => h.kind !== 'pin').stack, [], 'records without a stack are one group');
  t.deepEqual(first.failures, []);
  t.is(second.isolationFailures, 1);
  t.is(second.cmaRetries, 1);
  t.deepEqual(second.failures[0], {
    pfn: '0x17ac9', failures: 1, busyRetries: 1, count: 2, mapcount: 1, holders: 1, lastFailureAgoNs: 500_000_000,
    culprit: { comm: 'holder', pid: 9018, frame: 'try_grab_page+0x40', kind: 'pin' }, releaser: null, heldNs: 1_400_000_000,
  });
  t.deepEqual(second.culprits, [{ frame: 'try_grab_page+0x40', kind: 'pin', pages: 1, failures: 1 }]);
  t.is(last.failures[0].releaser.frame, 'release_pages+0x1a4');
  t.is(last.dropped, 2);
  t.deepEqual([last.maxPfns, last.evictedPfns, last.evictedRatePfns, last.evictedHoldPfns, last.evictedOutstandingRefs], [4 * 1024 * 1024, 0, 0, 0, 0]);
});

test('--max-pfns bounds a replay\'s tables too: evictions are in the JSON and the header', (t) => {
  const path = capture();
  const whole = JSON.parse(pageref(['top', '--replay', path, '--speed', '0', '--json']).stdout.trim().split('\n').pop()!);
  t.true(whole.pfns >= 2);
  const run = pageref(['top', '--replay', path, '--speed', '0', '--json', '--max-pfns', '1']);
  t.is(run.status, 0, run.stderr);
  const last = JSON.parse(run.stdout.trim().split('\n').pop()!);
  t.is(last.maxPfns, 1);
  t.is(last.pfns, 1);
  t.true(last.evictedPfns >= whole.pfns - 1);
  t.true(last.evictedHoldPfns >= 1);
  const text = pageref(['top', '--replay', path, '--speed', '0', '--batch', '1', '--max-pfns', '1']);
  t.true(last.evictedRatePfns >= 1);
  t.regex(text.stdout, /Pfns 1 evicted \d+\/\d+ held\/\d+ rates \(max 1\) !/);
});

test('--speed X plays at X times the recorded pace, --speed 0 as fast as it can', (t) => {
  const path = capture();
  // Four half-second snapshots: 2 s of capture, which --speed 0.5 cannot play in less than 4 s.
  const timed = (speed: string) => {
    const started = Date.now();
    const run = spawnSync(process.execPath, [PAGEREF, 'top', '--replay', path, '--speed', speed, '--batch', '4', '-d', '0.5'], { encoding: 'utf8', timeout: 30_000 });
    t.is(run.status, 0, run.stderr);
    t.is(headers(run.stdout).length, 4);
    return Date.now() - started;
  };
  const paced = timed('0.5');
  const fast = timed('0');
  t.log(`2 s of capture: ${paced} ms at --speed 0.5, ${fast} ms at --speed 0`);
  t.true(paced >= 4000, `${paced} ms`);
  // Both pay the same start-up (a second or more on a loaded machine); only --speed 0.5 waits, 4 s.
  t.true(fast < paced - 2000, `${fast} ms`);
});

const usageErrors: [string, string[], RegExp][] = [
  ['tracing options with --replay', ['top', '--replay', 'x.pgref', '--pid', '1', '--stacks', 'none'], /^pageref: --pid, --stacks: options of live tracing, not of --replay/],
  ['--speed without --replay', ['top', '--speed', '2'], /--speed is for --replay/],
  ['a speed that is not one', ['top', '--replay', 'x.pgref', '--speed', 'fast'], /--speed: "fast" is not a number/],
  ['a refresh of 0', ['top', '-d', '0'], /--delay: "0" is not a positive number of seconds/],
  // Beyond 2^31 ms setInterval would fire every millisecond.
  ['a refresh above an hour', ['top', '-d', '3000000'], /--delay: "3000000" is more than 3600 seconds/],
  ['--no-stacks with --replay, named as given', ['top', '--replay', 'x.pgref', '--no-stacks'], /^pageref: --no-stacks: options of live tracing, not of --replay/],
  ['an unknown view', ['top', '--view', 'stacks'], /--view: "stacks" must be one of pages, holders, failures/],
  ['a sort column of another view', ['top', '--view', 'holders', '--sort', 'net'], /--sort: "net" is not a column of the holders view \(kind, pages, refs, procs, age\)/],
  ['a filter that does not parse', ['top', '--filter', '0x200-0x100'], /--filter: the end of "0x200-0x100" must be above its start/],
  ['a batch count of 0', ['top', '--batch', '0'], /--batch: "0" must be from 1/],
  ['the same bad ring buffer as record', ['top', '--buffer-size', '5000'], /buffer size 5000 must be a power of two/],
  ['the same bad pid as record', ['top', '--pid', 'init'], /--pid: "init" is not a non-negative integer/],
];

for (const [what, args, message] of usageErrors) {
  test(`top usage error: ${what} is one line and exit status 2`, (t) => {
    const run = pageref(args);
    t.is(run.status, 2, run.stderr);
    t.is(lines(run.stderr).length, 1, run.stderr);
    t.regex(run.stderr, message);
    t.is(run.stdout, '');
  });
}

test('top --replay of a missing file or of a file that is not a capture: one line, exit 1', (t) => {
  const missing = pageref(['top', '--replay', '/nonexistent/capture.pgref']);
  t.is(missing.status, 1);
  t.deepEqual(lines(missing.stderr), ['pageref: cannot open /nonexistent/capture.pgref: ENOENT']);
  const notCapture = pageref(['top', '--replay', PAGEREF]);
  t.is(notCapture.status, 1);
  t.deepEqual(lines(notCapture.stderr), [`pageref: ${PAGEREF} is not a pageref capture`]);
});

test('live top on this machine\'s kernel (no page_ref tracepoints) fails at once with the doctor\'s explanation', (t) => {
  const started = Date.now();
  const run = pageref(['top', '--batch', '1']);
  t.is(run.status, 1, run.stderr);
  t.is(lines(run.stderr).length, 1, run.stderr);
  t.regex(run.stderr, /^pageref top: page_ref events: kernel .* has no page_ref tracepoints .*remedy: boot a kernel built with CONFIG_DEBUG_PAGE_REF=y/);
  t.is(run.stdout, '');
  t.true(Date.now() - started < 10_000);
});
