// pageref on real kernels: each test kernel boots once and runs
// test/vm/guest-suite.sh (doctor, the ftrace oracle run, the CMA run); the
// tests below check what it left behind. The kernel's own ftrace is the
// oracle. No kernel or no QEMU is a failure, never a silent pass;
// PAGEREF_SKIP_VM=1 (never set in CI) skips for a quick local run.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { replayCapture } from '../../src/capture/capture-reader';
import { BlameAnalysis } from '../../src/blame/blame-analysis';
import { blameJson } from '../../src/blame/blame-report';
import { KIND_RANK } from '../../src/blame/stack-kinds';
import { CaptureSummary, reportJson, ReportJson } from '../../src/report/capture-summary';
import { isolationFailed } from '../../src/record/event-batch';
import { EventType, isPageRefEvent } from '../../src/record/event-types';
import { forEachKernel } from './guest-runs';
import { parsePinned, unexplainedFailures } from './pinned-failures';
import type { KernelImage } from '../../src/vm/kernels';
import { runInVm, VmResult } from '../../src/vm/qemu';

const SUITE_TIMEOUT_SEC = 900;
const runs = new Map<string, Promise<VmResult>>();

// One boot per kernel, one after another (two emulated guests on two cores
// would only slow each other down); every test of that kernel awaits it.
function suiteRun(kernel: KernelImage): Promise<VmResult> {
  let run = runs.get(kernel.name);
  if (!run) {
    const previous = [...runs.values()].at(-1);
    run = (async () => {
      await previous?.catch(() => undefined);
      return runInVm({ kernel, script: 'sh test/vm/guest-suite.sh', timeoutSec: SUITE_TIMEOUT_SEC });
    })();
    runs.set(kernel.name, run);
  }
  return run;
}

function file(run: VmResult, name: string): string {
  try {
    return readFileSync(join(run.outDir, name), 'utf8');
  } catch {
    return `(no ${name})`;
  }
}

function report(path: string): ReportJson {
  const summary = new CaptureSummary();
  replayCapture(path, summary);
  return reportJson(summary, 10);
}

/** Per-event counts of the kernel's own ftrace text. */
function ftraceCounts(text: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const match of text.matchAll(/:\s+(page_ref_[a-z_]+):\s/g)) counts[match[1]] = (counts[match[1]] ?? 0) + 1;
  return counts;
}

forEachKernel('kernels', registerKernelTests);

function registerKernelTests(kernel: KernelImage): void {
  const name = kernel.name;

  test(`${name}: doctor finds every page_ref, isolation and CMA event`, async (t) => {
    const run = await suiteRun(kernel);
    t.log(`${name}: guest suite took ${run.seconds.toFixed(0)} s`);
    t.deepEqual(run.preconditions, [], 'the guest lacked what the suite needs');
    t.is(file(run, 'doctor.rc').trim(), '0', file(run, 'doctor.err'));
    const doctor = JSON.parse(file(run, 'doctor.json'));
    t.true(doctor.ok);
    t.is(doctor.debugPageRef, 'y');
    for (const event of ['page_ref_set', 'page_ref_mod', 'page_ref_mod_and_test', 'page_ref_mod_and_return', 'page_ref_mod_unless', 'page_ref_freeze', 'page_ref_unfreeze', 'test_pages_isolated', 'cma_alloc_start', 'cma_alloc_finish', 'cma_release']) {
      t.true(doctor.events.present.includes(event), `${event} missing`);
    }
  });

  test(`${name}: pageref --pid counts exactly what the kernel's ftrace saw for the same pid`, async (t) => {
    const run = await suiteRun(kernel);
    t.is(file(run, 'oracle-record.rc').trim(), '0', file(run, 'oracle-record.log'));
    t.is(file(run, 'oracle-churn.rc').trim(), '0', file(run, 'oracle-churn.log'));
    const stats = file(run, 'oracle-ftrace-stats.txt');
    t.notRegex(stats, /overrun: [1-9]/, 'ftrace lost events: the oracle is incomplete');
    const expected = ftraceCounts(file(run, 'ftrace.txt'));
    const got = report(join(run.outDir, 'oracle.pgref'));
    t.log(`${name}: ftrace ${JSON.stringify(expected)}`);
    const pageRefCounts = Object.fromEntries(Object.entries(got.events).filter(([event, count]) => event.startsWith('page_ref_') && count > 0));
    t.deepEqual(pageRefCounts, expected);
    t.true((expected.page_ref_mod ?? 0) + (expected.page_ref_mod_and_test ?? 0) > 4 * 2048, 'the workload churned 4 x 2048 pages');
    t.is(got.dropped, 0);
    t.is(got.capture.truncated, null);
    t.is(got.capture.stopReason, 'SIGINT');
  });

  test(`${name}: --comm and --pfn filter in the kernel`, async (t) => {
    const run = await suiteRun(kernel);
    t.is(file(run, 'filters-record.rc').trim(), '0', file(run, 'filters-record.log'));
    const capture = join(run.outDir, 'filters.pgref');
    let pageRefEvents = 0;
    const strays: string[] = [];
    replayCapture(capture, {
      header: () => {},
      stacks: () => {},
      counters: () => {},
      end: () => {},
      events: (batch, strings) => {
        for (let i = 0; i < batch.length; i++) {
          if (!isPageRefEvent(batch.type[i])) continue;
          pageRefEvents++;
          const comm = strings.get(batch.comm[i]);
          if (comm !== 'page-churn' || batch.pfn[i] >= 0x18000) strays.push(`${comm} 0x${batch.pfn[i].toString(16)}`);
        }
      },
    });
    const summary = report(capture);
    const filtered = Object.values(summary.kernelCounters ?? {}).reduce((sum, c) => sum + c.filtered, 0);
    t.log(`${name}: ${pageRefEvents} page_ref events kept, ${filtered} filtered in the kernel`);
    t.true(pageRefEvents > 100, 'page-churn left no events in the range');
    t.deepEqual(strays.slice(0, 5), [], 'events outside the filters');
    t.true(filtered > pageRefEvents, 'the kernel filtered nothing');
    t.is(summary.dropped, 0);
  });

  test(`${name}: pinned pages make isolation fail, and the capture holds their events and symbolised stacks`, async (t) => {
    const run = await suiteRun(kernel);
    const memory = `memory with the recorder attached:\n${file(run, 'meminfo-cma.txt')}\nOOM killer:\n${file(run, 'oom.txt')}`;
    t.is(file(run, 'cma-workload.rc').trim(), '0', `${file(run, 'cma-workload.log')}\n${memory}`);
    t.is(file(run, 'cma-record.rc').trim(), '0', `${file(run, 'cma-record.log')}\n${memory}`);
    t.log(`${name}: ${file(run, 'meminfo-cma.txt').replace(/\s+/g, ' ')}`);
    const capture = join(run.outDir, 'cma.pgref');
    const summary = report(capture);
    t.log(`${name}: ${summary.isolation.failures} isolation failures, ${summary.cma.busyRetries} busy retries, ${summary.cma.failedAllocations} failed allocations, ${summary.dropped} dropped`);
    t.is(summary.dropped, 0, 'the 64 MiB ring holds the run (blame needs the releases)');
    t.true(summary.events.test_pages_isolated > 0);
    t.true(summary.isolation.failures > 0, 'no isolation failed');
    t.is(summary.cma.allocations, 1, 'the workload makes one CMA allocation');
    t.is(summary.cma.failedAllocations, 1, 'and it fails (6.1 says so only by a NULL page)');
    t.is(summary.capture.truncated, null);

    // The busy pfns, then the stacks of every page_ref event on them.
    const busy = new Map<number, number>();
    const stacks = new Map<number, string[]>();
    const stacksOnBusy = new Set<number>();
    const ignore = { header: () => {}, counters: () => {}, end: () => {} };
    replayCapture(capture, {
      ...ignore,
      stacks: (entries) => entries.forEach((entry) => stacks.set(entry.id, entry.frames)),
      events: (batch) => {
        for (let i = 0; i < batch.length; i++) {
          if (batch.type[i] === EventType.TestPagesIsolated && isolationFailed(batch, i)) busy.set(batch.mapping[i], (busy.get(batch.mapping[i]) ?? 0) + 1);
        }
      },
    });
    replayCapture(capture, {
      ...ignore,
      stacks: () => {},
      events: (batch) => {
        for (let i = 0; i < batch.length; i++) {
          if (isPageRefEvent(batch.type[i]) && busy.has(batch.pfn[i]) && batch.stackId[i] >= 0) stacksOnBusy.add(batch.stackId[i]);
        }
      },
    });
    t.true(stacksOnBusy.size > 0, 'no page_ref event with a stack on any busy pfn');
    const frames = [...stacksOnBusy].flatMap((id) => stacks.get(id) ?? []);
    t.true(frames.length > 0, 'the stacks of busy pfns are missing from the capture');
    t.true(frames.every((frame) => /^[\w.$]+\+0x[0-9a-f]+( \[\w+\])?$/.test(frame)), `not symbolised: ${frames.find((f) => !/^[\w.$]+\+0x[0-9a-f]+/.test(f))}`);
    // No kernel address in the capture: frames are names, pointers are hashed
    // below 2^52, and kernel addresses all lie at or above 0xff00000000000000
    // (0xffff800000000000 with 4-level page tables; -cpu max has 5-level ones).
    let largest = 0;
    replayCapture(capture, {
      ...ignore,
      stacks: () => {},
      events: (batch) => {
        for (const column of [batch.pfn, batch.flags, batch.mapping]) for (let i = 0; i < batch.length; i++) largest = Math.max(largest, column[i]);
      },
    });
    t.true(largest < 2 ** 52, `a value of 0x${largest.toString(16)} in the capture`);
    t.notRegex(readFileSync(capture).toString('latin1'), /ff[0-9a-f]{14}/i, 'a kernel address in hex');
    const pinned = parsePinned(file(run, 'pinned.txt'));
    t.true(pinned.size > 0, 'the workload reported no pinned pfns');
    t.is(unexplainedFailures(busy, pinned), null);
  });

  test(`${name}: blame names the vmsplice (GUP) path as holder and the pipe release as releaser`, async (t) => {
    const run = await suiteRun(kernel);
    const analysis = new BlameAnalysis();
    replayCapture(join(run.outDir, 'cma.pgref'), analysis);
    const blame = blameJson(analysis);
    t.true(blame.failures > 0);
    const holders = blame.byStack.filter((g) => g.role === 'holder');
    const releasers = blame.byStack.filter((g) => g.role === 'releaser');
    t.log(`${name}: holders ${holders.map((g) => `${g.kind} ${g.frame} x${g.pages}`).join('; ')}`);
    t.log(`${name}: releasers ${releasers.map((g) => `${g.frame} x${g.pages}`).join('; ')}`);
    // The grab itself (its telling frame is GUP's): a fault-in on the way can take other
    // references (the new page's, an LRU batch's) under the same callers.
    const gup = holders.find((g) => g.stack.some((frame) => /vmsplice|get_user_pages|pin_user_pages|iov_iter_get_pages|iov_iter_extract/.test(frame)) && /try_grab_|try_get_folio|gup_/.test(g.frame));
    t.truthy(gup, 'no holder stack grabs the page for vmsplice');
    t.is(gup?.kind, 'pin');
    t.true(gup?.comms.includes('vmsplice-hold'));
    const first = [...holders].sort((a, b) => KIND_RANK[a.kind] - KIND_RANK[b.kind] || b.pages - a.pages)[0];
    t.regex(first.stack.join(' '), /vmsplice|get_user_pages|pin_user_pages|iov_iter_get_pages|iov_iter_extract/, 'the first culprit is not the vmsplice pin');
    t.truthy(
      releasers.find((g) => g.stack.some((frame) => /pipe_buf_release|free_pipe_info|pipe_release/.test(frame))),
      'no releaser stack comes from releasing the pipe when the holder exited',
    );
    // Every pinned busy pfn's holders were all seen being taken: the pin and
    // nothing unexplained. (A page busy only for a moment, pinned-failures.ts,
    // may have been held since before the recording.)
    const pinned = parsePinned(file(run, 'pinned.txt'));
    const pinnedBusy = blame.busyPfns.filter((b) => pinned.has(Number(b.pfn)));
    t.true(pinnedBusy.length > 0 && pinnedBusy.every((b) => b.holders.length > 0));
  });

  test(`${name}: live blame, stopped by Ctrl-C, names the same culprit`, async (t) => {
    const run = await suiteRun(kernel);
    t.is(file(run, 'live-blame-workload.rc').trim(), '0', file(run, 'live-blame-workload.log'));
    t.is(file(run, 'live-blame.rc').trim(), '0', file(run, 'live-blame.log'));
    const live = JSON.parse(file(run, 'live-blame.json'));
    t.log(`${name}: live blame: ${live.failures} failures, ${live.dropped} dropped`);
    t.is(live.dropped, 0);
    t.is(live.failures, 33, 'the workload fails isolation 33 times');
    // All at the lowest pinned page, but for a page busy for a moment (pinned-failures.ts).
    const busiest = Math.max(...live.busyPfns.map((b: { failures: number }) => b.failures));
    t.true(busiest > live.failures / 2, `busy pfns: ${JSON.stringify(live.busyPfns.map((b: { pfn: string; failures: number }) => [b.pfn, b.failures]))}`);
    const holders = live.byStack.filter((g: { role: string }) => g.role === 'holder');
    t.true(holders.some((g: { kind: string; stack: string[] }) => g.kind === 'pin' && g.stack.some((frame) => /vmsplice/.test(frame))));
  });

  test(`${name}: with the events ring flooded, every isolation and CMA record still arrives`, async (t) => {
    const run = await suiteRun(kernel);
    t.is(file(run, 'flood-workload.rc').trim(), '0', file(run, 'flood-workload.log'));
    t.is(file(run, 'flood-record.rc').trim(), '0', file(run, 'flood-record.log'));
    const summary = report(join(run.outDir, 'flood.pgref'));
    const counters = summary.kernelCounters;
    if (!counters) return t.fail('the capture has no kernel counters');
    const failureEvents = ['test_pages_isolated', 'cma_alloc_start', 'cma_alloc_finish', 'cma_alloc_busy_retry'] as const;
    const pageRefDropped = Object.entries(counters)
      .filter(([event]) => event.startsWith('page_ref_'))
      .reduce((sum, [, c]) => sum + c.dropped, 0);
    t.log(`${name}: ${pageRefDropped} page_ref records dropped; ${summary.isolation.failures} isolation failures, ${summary.cma.busyRetries} busy retries received`);
    t.true(pageRefDropped > 1000, 'the one-page events ring did not overflow: the test proves nothing');
    for (const event of failureEvents) {
      t.is(counters[event].dropped, 0, `${event} records were dropped`);
      t.is(counters[event].emitted, summary.events[event], `${event}: received differs from what the kernel emitted`);
    }
    t.is(summary.isolation.failures, 33);
    t.is(summary.cma.busyRetries, 33);
    t.is(summary.cma.failedAllocations, 1);
  });

  test(`${name}: nothing stays loaded in the kernel after record exits`, async (t) => {
    const run = await suiteRun(kernel);
    const progs = file(run, 'bpf-progs-after.txt');
    t.notRegex(progs, /tracepoint/, progs);
    t.notRegex(file(run, 'bpf-links-after.txt'), /tracepoint|perf_event/);
  });
}
