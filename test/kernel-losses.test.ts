// No silent loss: what the kernel counted but did not hand over (drops,
// lost stacks, events sampled out, per-pfn overflow) is shown by record,
// report, blame and top, in text and JSON alike.

import test from 'ava';
import { EVENT_COUNT, EventType } from '../src/record/event-types';
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
