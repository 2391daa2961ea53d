// No silent loss: what the kernel counted but did not hand over (drops,
// lost stacks, events sampled out, per-pfn overflow) is shown by record,
// report, blame and top, in text and JSON alike.

import test from 'ava';
import { recordSummary } from '../src/cli/record-command';
import { EVENT_COUNT, EventType } from '../src/record/event-types';
import { counters } from './helpers/capture';
import { pageref } from './helpers/cli';
import { topCapture } from './helpers/top-capture';

/** Per-event counts, all on `type`. */
function on(type: number, n: number): number[] {
  const values = new Array<number>(EVENT_COUNT).fill(0);
  values[type] = n;
  return values;
}

const LOSSES = {
  dropped: on(EventType.PageRefMod, 3),
  stackLost: on(EventType.PageRefMod, 5),
  sampledOut: on(EventType.PageRefMod, 4000),
  aggregateOverflow: on(EventType.PageRefMod, 7),
};

/** top's capture, recorded with --sample-pfn 64, whose kernel counted every kind of loss. */
function lossyCapture(): string {
  return topCapture(false, { recordOptions: { samplePfn: 64 }, trailerCounters: LOSSES });
}

test('report text shows drops, lost stacks and the events sampled out in the kernel; --json has them per event', (t) => {
  const path = lossyCapture();
  const text = pageref(['report', path]);
  t.is(text.status, 0, text.stderr);
  t.regex(text.stdout, /^DROPPED: 3 records were lost/m);
  t.regex(text.stdout, /^stacks lost: 5 \(stack map full or hash collision\)$/m);
  t.regex(text.stdout, /^sampled out in the kernel: 4000 events \(--sample-pfn, --sample-events\)$/m);
  const json = JSON.parse(pageref(['report', path, '--json']).stdout);
  t.like(json.kernelCounters.page_ref_mod, { dropped: 3, stackLost: 5, sampledOut: 4000, aggregateOverflow: 7 });
});

test('blame shows lost stacks and events sampled out, in text and JSON', (t) => {
  const path = lossyCapture();
  const text = pageref(['blame', path]);
  t.is(text.status, 0, text.stderr);
  t.regex(text.stdout, /^WARNING: 3 records were lost in the kernel/m);
  t.regex(text.stdout, /^WARNING: 5 records lost their stack in the kernel \(stack map full or hash collision\)/m);
  t.regex(text.stdout, /^Note: 4000 events were sampled out in the kernel/m);
  const json = JSON.parse(pageref(['blame', path, '--json']).stdout);
  t.like(json, { dropped: 3, stackLost: 5, sampledOut: 4000 });
  // A capture that lost nothing says 0, and no warning.
  const whole = topCapture();
  t.like(JSON.parse(pageref(['blame', whole, '--json']).stdout), { stackLost: 0, sampledOut: 0 });
  t.notRegex(pageref(['blame', whole]).stdout, /lost their stack|sampled out/);
});

test('top --batch shows lost stacks, events sampled out, the kernel\'s per-pfn overflow and the sampling in its header', (t) => {
  const path = lossyCapture();
  const run = pageref(['top', '--replay', path, '--speed', '0', '--batch', '10']);
  t.is(run.status, 0, run.stderr);
  // The losses come with the trailer: the last snapshot has them.
  const last = run.stdout.slice(run.stdout.lastIndexOf('pageref top - replay'));
  t.regex(last, /Dropped 3 \(/);
  t.regex(last, /Stacks lost 5 !/);
  t.regex(last, /Sampled out 4000/);
  t.regex(last, /Overflow 7 \(pfns without a slot\) !/);
  t.regex(run.stdout.slice(0, run.stdout.indexOf('\n\n')), /sampled: 1 in 64 pfns/, 'every snapshot says how the capture was sampled');
  const whole = pageref(['top', '--replay', topCapture(), '--speed', '0', '--batch', '10']).stdout;
  t.notRegex(whole, /Stacks lost|Sampled out|Overflow|sampled:/, 'nothing lost, nothing said');
});

test('top --json carries lost stacks, events sampled out, the per-pfn overflow and the sampling in every line', (t) => {
  const run = pageref(['top', '--replay', lossyCapture(), '--speed', '0', '--json', '--batch', '10']);
  t.is(run.status, 0, run.stderr);
  const snapshots = run.stdout.trim().split('\n').map((line) => JSON.parse(line));
  const [first, last] = [snapshots[0], snapshots[snapshots.length - 1]];
  t.like(first, { stackLost: 0, sampledOut: 0, aggregateOverflow: 0, sampling: { pfn: 64, events: 1, scale: 64, estimated: true } });
  t.like(last, { dropped: 3, stackLost: 5, sampledOut: 4000, aggregateOverflow: 7, sampling: { pfn: 64, events: 1, scale: 64, estimated: true } });
});

test('record\'s summary names lost stacks and events sampled out, with a remedy for each loss', (t) => {
  const result = {
    elapsedSec: 10,
    records: 1200,
    dropped: 3,
    stopReason: 'SIGINT',
    counters: counters({ ...LOSSES, aggregated: on(EventType.PageRefMod, 0) }, 1200),
  };
  const lines = recordSummary(result, { output: 'x.pgref', bytes: 65536 }, { stacks: 'all', maxPfns: 1000 });
  t.deepEqual(lines, [
    'pageref record: 1200 records in 10.0 s (stopped by SIGINT), 3 dropped, 5 stacks lost, events 4000 sampled out, 65536 bytes written to x.pgref',
    'pageref record: WARNING: 3 records were lost because the ring buffer was full; try a larger --buffer-size, filters or sampling',
    'pageref record: WARNING: 5 records lost their stack (stack map full or hash collision); try a larger --stack-entries',
    'pageref record: WARNING: 7 events fell on pfns without a slot (--max-pfns 1000) and are only counted',
  ]);
  const clean = recordSummary({ ...result, dropped: 0, counters: counters({}, 1200) }, { output: 'x.pgref', bytes: 65536 }, { stacks: 'all', maxPfns: 1000 });
  t.deepEqual(clean, ['pageref record: 1200 records in 10.0 s (stopped by SIGINT), 0 dropped, 65536 bytes written to x.pgref']);
});
