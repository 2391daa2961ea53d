// `pageref import` on real ftrace text: each test kernel boots once and runs
// test/vm/ftrace-import-guest.sh, which traces one workload with the
// kernel's ftrace and with `pageref record --pid` at once, with stack traces
// (trace) and without (trace_pipe, no irq-info columns, a tgid column). The
// imported text must hold exactly the per-event counts pageref recorded for
// the same window, and the stacks ftrace printed.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { KernelImage, repoRoot } from '../../src/vm/kernels';
import type { VmResult } from '../../src/vm/qemu';
import { forEachKernel, guestFile, oneBootPerKernel } from './guest-runs';
import { replayCapture } from '../../src/capture/capture-reader';

const TIMEOUT_SEC = 600;
const guestRun = oneBootPerKernel('sh test/vm/ftrace-import-guest.sh', TIMEOUT_SEC);

function pageref(args: string[]): string {
  return execFileSync(process.execPath, [join(repoRoot(), 'bin', 'pageref.js'), ...args], { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

interface ImportJson {
  imported: number;
  events: Record<string, number>;
  unknownEvents: Record<string, number>;
  malformed: number;
  eventsWithStacks: number;
  lostEvents: number;
  warnings: string[];
}

function importText(run: VmResult, name: string, kernel: KernelImage): { summary: ImportJson; capture: string } {
  const capture = join(run.outDir, `${name}-imported.pgref`);
  const summary = JSON.parse(pageref(['import', join(run.outDir, `${name}-trace.txt`), '-o', capture, '--kernel', kernel.name, '--json', '--strict', '--force'])) as ImportJson;
  return { summary, capture };
}

function reportEvents(capture: string): Record<string, number> {
  return (JSON.parse(pageref(['report', capture, '--json'])) as { events: Record<string, number> }).events;
}

/** Function names (offsets dropped) of every stack frame in a capture. */
function functionNames(capture: string): Set<string> {
  const names = new Set<string>();
  replayCapture(capture, {
    header: () => {},
    stacks: (stacks) => stacks.forEach((s) => s.frames.forEach((f) => names.add(f.replace(/\+0x[0-9a-f]+.*$/, '')))),
    events: () => {},
    counters: () => {},
    end: () => {},
  });
  return names;
}

/** The innermost frame of every stack in a capture. */
function firstFrames(capture: string): Set<string> {
  const firsts = new Set<string>();
  replayCapture(capture, {
    header: () => {},
    stacks: (stacks) => stacks.forEach((s) => firsts.add(s.frames[0])),
    events: () => {},
    counters: () => {},
    end: () => {},
  });
  return firsts;
}

forEachKernel('ftrace import', registerTests);

function registerTests(kernel: KernelImage): void {
  for (const [name, what] of [
    ['stacks', 'with the stacktrace option, from trace'],
    ['pipe', 'without stacks, irq-info off and record-tgid on, from trace_pipe'],
  ] as const) {
    test(`${kernel.name}: ftrace text ${what} imports to the per-event counts pageref recorded`, async (t) => {
      const run = await guestRun(kernel);
      t.is(guestFile(run, `${name}-churn.rc`).trim(), '0', `page-churn failed: ${guestFile(run, `${name}-churn.log`)}\n${run.log}`);
      t.is(guestFile(run, `${name}-record.rc`).trim(), '0', guestFile(run, `${name}-record.log`));
      t.notRegex(guestFile(run, `${name}-ftrace-stats.txt`), /overrun: [1-9]/, 'ftrace lost events: the text is incomplete');
      const { summary, capture } = importText(run, name, kernel);
      t.is(summary.malformed, 0, summary.warnings.join('\n'));
      t.is(summary.lostEvents, 0);
      t.deepEqual(summary.unknownEvents, {});
      const recorded = reportEvents(join(run.outDir, `${name}.pgref`));
      const imported = reportEvents(capture);
      t.log(`${kernel.name} ${name}: pageref ${JSON.stringify(recorded)}`);
      t.true(recorded.page_ref_set > 0 && recorded.page_ref_mod_and_test > 0, 'the workload made page_ref events');
      t.deepEqual(imported, recorded, 'the imported text has exactly the events pageref recorded');
      t.deepEqual(summary.events, recorded);
      const text = guestFile(run, `${name}-trace.txt`);
      if (name === 'stacks') {
        t.is(summary.eventsWithStacks, summary.imported, 'every event has its <stack trace> block');
        const ours = functionNames(join(run.outDir, `${name}.pgref`));
        const theirs = functionNames(capture);
        const shared = [...theirs].filter((f) => ours.has(f));
        t.true(shared.length >= 5, `ftrace's stacks name the functions pageref's do (shared: ${shared.join(', ')})`);
        const firsts = firstFrames(capture);
        t.true(firsts.size > 0 && [...firsts].every((f) => f.startsWith('__page_ref_')), `imported stacks start at the __page_ref_* function, as pageref's do: ${[...firsts].join(', ')}`);
      } else {
        t.is(summary.eventsWithStacks, 0);
        t.regex(text, /\(\s*\d+\) \[\d+\] +\d+\.\d+: page_ref_/, 'the text has the tgid column and no irq-info columns');
      }
      const blame = pageref(['blame', capture]);
      t.regex(blame, /isolation tests/, 'blame reads the imported capture');
    });
  }
}
