// The soak test of pageref record on real kernels: test/vm/soak-guest.sh
// records page-churn at its full rate, stacks and all, for
// PAGEREF_SOAK_SECONDS (45 in CI; `npm run soak` runs 600) and samples the
// recorder's resident memory. Nothing may be lost unaccounted: for every
// event type the kernel's counters add up to what it saw, and the capture
// holds exactly what it says it emitted; memory must stop growing.

import test from 'ava';
import { join } from 'node:path';
import { replayCapture } from '../../src/capture/capture-reader';
import { CaptureSummary, reportJson } from '../../src/report/capture-summary';
import { EVENT_NAMES } from '../../src/record/event-types';
import { forEachKernel, guestFile, oneBootPerKernel } from './guest-runs';

const SOAK_SECONDS = Number(process.env.PAGEREF_SOAK_SECONDS ?? 45);
const guestRun = oneBootPerKernel(`PAGEREF_SOAK_SECONDS=${SOAK_SECONDS} sh test/vm/soak-guest.sh`, SOAK_SECONDS + 300);

/** [seconds since the start, resident KiB] from rss.txt. */
function rssSamples(text: string): [number, number][] {
  return text
    .split('\n')
    .filter((line) => /^\d+ \d+$/.test(line))
    .map((line) => line.split(' ').map(Number) as [number, number]);
}

forEachKernel('soak', (kernel) => {
  const name = kernel.name;

  test(`${name}: ${SOAK_SECONDS} s at full rate: every event the kernel saw is received, dropped or counted as filtered`, async (t) => {
    const run = await guestRun(kernel);
    t.is(guestFile(run, 'load.rc').trim(), '0', 'page-churn failed');
    t.is(guestFile(run, 'soak-record.rc').trim(), '0', guestFile(run, 'soak-record.log'));
    const summary = new CaptureSummary();
    replayCapture(join(run.outDir, 'soak.pgref'), summary);
    const report = reportJson(summary, 1);
    t.is(report.capture.truncated, null);
    const counters = report.kernelCounters;
    if (!counters) return t.fail('the capture has no kernel counters');
    let received = 0;
    for (const [event, c] of Object.entries(counters) as [keyof typeof counters, (typeof counters)[keyof typeof counters]][]) {
      t.is(c.filtered + c.sampledOut + c.countedOnly + c.emitted + c.dropped, c.seen, `${event}: the counters do not add up to what the kernel saw`);
      t.is(report.events[event], c.emitted, `${event}: the capture holds ${report.events[event]} records, the kernel emitted ${c.emitted}`);
      received += report.events[event];
    }
    t.log(`${name}: ${received} records received, ${report.dropped} dropped, in ${SOAK_SECONDS} s`);
    t.true(received > SOAK_SECONDS * 1000, 'the workload made too few events to soak anything');
  });

  test(`${name}: the recorder does not trace its own page references, and counts them as filtered`, async (t) => {
    const run = await guestRun(kernel);
    const recorder = Number(guestFile(run, 'recorder.pid').trim());
    let untraced: number | undefined;
    let ownRecords = 0;
    let pageRefFiltered = 0;
    replayCapture(join(run.outDir, 'soak.pgref'), {
      header: (header) => {
        untraced = header.options?.untracedTgid;
      },
      stacks: () => {},
      events: (batch) => {
        for (let i = 0; i < batch.length; i++) if (batch.tgid[i] === recorder) ownRecords++;
      },
      counters: () => {},
      end: (end) => {
        const filtered = end.trailer?.counters.filtered ?? [];
        pageRefFiltered = EVENT_NAMES.reduce((sum, event, type) => sum + (event.startsWith('page_ref_') ? (filtered[type] ?? 0) : 0), 0);
      },
    });
    t.log(`${name}: recorder pid ${recorder}: ${pageRefFiltered} of its page_ref events filtered in the kernel`);
    t.is(untraced, recorder, 'the header names the recorder as untraced');
    t.is(ownRecords, 0, 'records of the recorder itself');
    // Its resident memory grows by tens of MiB (the next test): page faults
    // in its own context, and nothing else filters in this run.
    t.true(pageRefFiltered > 0, 'none of the recorder\'s own events was filtered');
  });

  test(`${name}: ${SOAK_SECONDS} s at full rate: the recorder's resident memory stops growing`, async (t) => {
    const run = await guestRun(kernel);
    const samples = rssSamples(guestFile(run, 'rss.txt'));
    t.true(samples.length >= SOAK_SECONDS / 4, `only ${samples.length} memory samples`);
    const kib = samples.map(([, value]) => value);
    const third = Math.floor(kib.length / 3);
    // The first third warms up (code, buffers, string and stack tables);
    // after it, a leak would keep climbing.
    const warmedUp = Math.max(...kib.slice(0, third + 1));
    const lastThird = kib.slice(2 * third);
    const peak = Math.max(...kib);
    t.log(`${name}: resident ${kib[0]} KiB at the start, ${warmedUp} KiB after ${samples[third][0]} s, peak ${peak} KiB, ${kib.at(-1)} KiB at ${samples.at(-1)?.[0]} s`);
    t.true(Math.max(...lastThird) <= warmedUp * 1.2 + 8192, 'resident memory kept growing after the warm-up');
    t.true(peak < 256 * 1024, `resident memory peaked at ${peak} KiB`);
  });
});
