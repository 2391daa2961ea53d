import test from 'ava';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { replayCapture } from '../src/capture/capture-reader';
import { FtraceImportOptions, FtraceImportResult, FtraceTextError, frameName, importFtraceStream } from '../src/import/ftrace-text';
import { EventBatch, NO_PFN } from '../src/record/event-batch';
import { EventType } from '../src/record/event-types';
import { StringTable } from '../src/record/string-table';
import type { CaptureSink, StreamEnd } from '../src/stream/capture-sink';
import type { CaptureHeader, StackEntry } from '../src/capture/schema';
import { spawn, spawnSync } from 'node:child_process';
import { open } from 'node:fs/promises';
import { lines, PAGEREF, pageref } from './helpers/cli';
import { tempPath } from './helpers/capture';

const FIXTURES = join(__dirname, '..', '..', 'test', 'fixtures');
const fixture = (name: string) => join(FIXTURES, name);

interface Row {
  type: number; tsNs: number; pfn: number; flags: number; mapping: number; pid: number; tgid: number; cpu: number;
  count: number; mapcount: number; val: number; ret: number; mt: number; comm: string; name: string; stack: string[] | null;
}

/** A sink that keeps every event as a row, checking the stream's order contract on the way. */
class RowSink implements CaptureSink {
  head?: CaptureHeader;
  rows: Row[] = [];
  stackById = new Map<number, string[]>();
  ended?: StreamEnd;
  batches = 0;
  header(h: CaptureHeader) { this.head = h; }
  stacks(stacks: StackEntry[]) { for (const s of stacks) this.stackById.set(s.id, s.frames); }
  events(b: EventBatch, strings: StringTable) {
    this.batches++;
    for (let i = 0; i < b.length; i++) {
      const id = b.stackId[i];
      if (id >= 0 && !this.stackById.has(id)) throw new Error(`stack ${id} used before it was defined`);
      this.rows.push({
        type: b.type[i], tsNs: b.tsNs[i], pfn: b.pfn[i], flags: b.flags[i], mapping: b.mapping[i], pid: b.pid[i], tgid: b.tgid[i], cpu: b.cpu[i],
        count: b.count[i], mapcount: b.mapcount[i], val: b.val[i], ret: b.ret[i], mt: b.mt[i], comm: strings.get(b.comm[i]), name: strings.get(b.name[i]),
        stack: id >= 0 ? this.stackById.get(id)! : null,
      });
    }
  }
  counters() {}
  end(end: StreamEnd) { this.ended = end; }
}

async function parse(name: string, options: Partial<FtraceImportOptions> = {}): Promise<{ sink: RowSink; result: FtraceImportResult; warnings: string[] }> {
  const sink = new RowSink();
  const warnings: string[] = [];
  const result = await importFtraceStream(Readable.from(readFileSync(fixture(name), 'utf8')), sink, { name, onWarning: (w) => warnings.push(w), ...options });
  return { sink, result, warnings };
}

test('the seed example imports and blame names the exit path as the releaser of pfn 0x17ac9', (t) => {
  const out = tempPath('seed.pgref');
  const run = pageref(['import', fixture('ftrace-seed.txt'), '-o', out]);
  t.is(run.status, 0, run.stderr);
  t.regex(run.stdout, /imported 4 events/);
  const blame = JSON.parse(pageref(['blame', out, '--json']).stdout);
  t.is(blame.failures, 1);
  const busy = blame.busyPfns[0];
  t.is(busy.pfn, '0x17ac9');
  t.is(busy.count, 2);
  t.is(busy.releasers.length, 1);
  const releaser = busy.releasers[0];
  t.is(releaser.pid, 9018);
  t.is(releaser.afterNs, 375_000);
  t.is(releaser.stack[0], 'release_pages');
  t.true(releaser.stack.includes('do_exit'));
  t.deepEqual(releaser.releases?.slice(0, 2), ['get_page_from_freelist', '__alloc_pages_nodemask'], 'the kernel_stack block after page_ref_set is its stack');
  t.deepEqual(blame.byStack.filter((g: { role: string }) => g.role === 'releaser').map((g: { frame: string; examplePfn: string }) => [g.frame, g.examplePfn]), [['release_pages', '0x17ac9']]);
  const report = JSON.parse(pageref(['report', out, '--json']).stdout);
  t.is(report.capture.source, `ftrace text: ${fixture('ftrace-seed.txt')}`);
  t.is(report.events.page_ref_set, 1);
  t.is(report.events.page_ref_mod, 1);
  t.is(report.events.page_ref_mod_and_test, 1);
  t.is(report.events.test_pages_isolated, 1);
  t.is(report.isolation.failures, 1);
  t.is(report.capture.durationSec, 0.496468);
});

test('the seed mail itself, prose and all, imports and blame names release_pages ... do_exit as the releaser of pfn 0x17ac9', (t) => {
  // test/fixtures/ftrace-seed-mail.txt is the seed as it came (../shared/seeds/), byte for byte: the mail's
  // other lines are skipped with warnings, and the trace lines in it tell the seed author's story.
  const out = tempPath('seed-mail.pgref');
  const run = pageref(['import', fixture('ftrace-seed-mail.txt'), '-o', out, '--json']);
  t.is(run.status, 0, run.stderr);
  const summary = JSON.parse(run.stdout);
  t.is(summary.imported, 4);
  t.true(summary.malformed > 0, 'the mail\'s prose is skipped, not fatal');
  const blame = JSON.parse(pageref(['blame', out, '--json']).stdout);
  t.is(blame.failures, 1);
  const busy = blame.busyPfns.find((p: { pfn: string }) => p.pfn === '0x17ac9');
  t.truthy(busy, 'pfn 0x17ac9 is the busy page of the failed isolation');
  t.is(busy.failures, 1);
  t.is(busy.releasers.length, 1);
  const releaser = busy.releasers[0];
  t.true(releaser.afterNs > 0, 'released after the isolation failure');
  t.is(releaser.stack[0], 'release_pages');
  t.true(releaser.stack.includes('do_exit'), releaser.stack.join(' < '));
  t.true(releaser.stack.indexOf('release_pages') < releaser.stack.indexOf('do_exit'), 'release_pages ... do_exit, innermost first');
  t.deepEqual(blame.byStack.filter((g: { role: string }) => g.role === 'releaser').map((g: { frame: string; examplePfn: string }) => [g.frame, g.examplePfn]), [['release_pages', '0x17ac9']]);
});

test('seed: times are ns from the first event, the mapping pointer is hashed, numeric flags kept', async (t) => {
  const { sink, result } = await parse('ftrace-seed.txt');
  t.deepEqual(sink.rows.map((r) => r.tsNs), [0, 4_000, 496_093_000, 496_468_000]);
  const [set, mod, isolated, put] = sink.rows;
  t.is(set.mapping, 0, '(nil) is no mapping');
  t.not(mod.mapping, 0);
  t.not(mod.mapping, 0xffff880015a78dc1);
  t.is(mod.mapping, put.mapping, 'equal pointers stay equal');
  t.is(mod.mapping % 4, 1, 'the anon bit of a raw pointer is kept');
  t.is(mod.flags, 0x40048);
  t.is(put.flags, 0x40068);
  t.deepEqual([set.count, set.mapcount, set.val, set.mt], [1, 0, 1, 4]);
  t.deepEqual([put.count, put.val, put.ret], [0, -1, 1]);
  t.deepEqual([isolated.type, isolated.pfn, isolated.flags, isolated.mapping, isolated.pid], [EventType.TestPagesIsolated, 0x17800, 0x17c00, 0x17ac9, 9131]);
  t.is(set.comm, '<...>');
  t.is(result.eventsWithStacks, 2);
  t.is(sink.head?.source, 'ftrace text: ftrace-seed.txt');
  t.is(sink.ended?.trailer?.stopReason, 'end of ftrace text');
});

test('/sys/kernel/tracing/trace: irq-info columns, <stack trace> blocks, symbolic flags, hashed %p, cma and lost events', async (t) => {
  const { sink, result, warnings } = await parse('ftrace-trace.txt');
  t.deepEqual(
    Object.entries(result.events).filter(([, n]) => n > 0),
    [['page_ref_set', 1], ['page_ref_mod', 1], ['page_ref_mod_and_test', 1], ['test_pages_isolated', 2], ['cma_alloc_start', 1], ['cma_alloc_finish', 1], ['cma_alloc_busy_retry', 1], ['cma_release', 1]],
  );
  t.deepEqual(result.unknownEvents, { sched_switch: 1 });
  t.is(result.lostEvents, 3);
  t.is(result.malformed, 0);
  t.regex(sink.ended?.trailer?.stopReason ?? '', /lost 3 events/);
  t.deepEqual(warnings, ['line 21: symbolic page flags read with the 6.12 flag table; pass --kernel RELEASE for another kernel\'s']);
  const mod = sink.rows.find((r) => r.type === EventType.PageRefMod)!;
  t.deepEqual(mod.stack, ['__page_ref_mod+0x5a', 'try_grab_folio+0x4b', '__get_user_pages+0x1f0', 'iov_iter_extract_pages+0x9c', 'vmsplice_to_pipe+0x80', '__do_sys_vmsplice+0x12'],
    'the stack after a sched_switch on another CPU still goes to the page_ref_mod of its own CPU');
  t.is(mod.flags, 2 ** 3 + 2 ** 5 + 2 ** 17, 'uptodate|lru|swapbacked in 6.12 bits');
  t.is(mod.comm, 'vmsplice-hold');
  t.is(mod.mapping % 4, 0, 'a hashed %p claims no type bits');
  const set = sink.rows.find((r) => r.type === EventType.PageRefSet)!;
  t.is(set.flags, 0, 'flags=none');
  t.is(set.mapping, 0);
  t.is(set.stack?.[1], 'post_alloc_hook');
  const retry = sink.rows.find((r) => r.type === EventType.CmaAllocBusyRetry)!;
  t.deepEqual([retry.name, retry.pfn, retry.flags, retry.mapping, retry.val], ['reserved', 0x12000, 4096, 8, 1]);
  const start = sink.rows.find((r) => r.type === EventType.CmaAllocStart)!;
  t.deepEqual([start.pfn, start.flags, start.mapping, start.val], [NO_PFN, 4096, 8, 0]);
  const { sink: v61 } = await parse('ftrace-trace.txt', { kernelRelease: '6.1.192' });
  t.is(v61.rows.find((r) => r.type === EventType.PageRefMod)!.flags, 2 ** 2 + 2 ** 4 + 2 ** 19, 'the 6.1 bits with --kernel 6.1');
  t.is(v61.head?.kernelRelease, '6.1.192');
});

test('blame on the trace fixture names the vmsplice pin and its release at exit', (t) => {
  const out = tempPath('trace.pgref');
  t.is(pageref(['import', fixture('ftrace-trace.txt'), '-o', out]).status, 0);
  const blame = JSON.parse(pageref(['blame', out, '--json']).stdout);
  t.is(blame.failures, 1);
  t.is(blame.busyRetries, 1);
  const pin = blame.byStack.find((g: { role: string }) => g.role === 'holder');
  t.deepEqual([pin.kind, pin.frame, pin.comms, pin.examplePfn], ['pin', 'try_grab_folio+0x4b', ['vmsplice-hold'], '0x12345']);
  const releaser = blame.byStack.find((g: { role: string }) => g.role === 'releaser');
  t.true(releaser.stack.includes('anon_pipe_buf_release+0x30'));
});

test('trace_pipe with the record-tgid column, no irq-info columns, every page_ref event', async (t) => {
  const { sink } = await parse('ftrace-pipe.txt');
  t.deepEqual(sink.rows.map((r) => r.type), [EventType.PageRefSet, EventType.PageRefMod, EventType.PageRefModUnless, EventType.PageRefModAndReturn, EventType.PageRefFreeze, EventType.PageRefUnfreeze]);
  t.deepEqual([sink.rows[0].pid, sink.rows[0].tgid, sink.rows[0].comm], [1201, 1200, 'page-churn']);
  t.deepEqual([sink.rows[2].pid, sink.rows[2].tgid, sink.rows[2].cpu, sink.rows[2].ret], [1202, 1202, 1, 1], '(-------): tgid unknown, the thread stands for it');
  t.is(sink.rows[4].ret, 1);
  t.true(sink.rows.every((r) => r.stack === null));
});

test('trace-cmd report: <stack trace > blocks with addresses stripped, unsymbolised frames, a failed allocation', async (t) => {
  const { sink, result } = await parse('trace-cmd-report.txt');
  t.deepEqual(result.unknownEvents, { workqueue_execute_start: 1 });
  t.deepEqual(sink.rows[0].stack, ['get_page_from_freelist', '__alloc_pages_nodemask', '[unknown]']);
  const put = sink.rows.find((r) => r.type === EventType.PageRefModAndTest)!;
  t.deepEqual(put.stack, ['release_pages+0x254', 'exit_mmap', 'do_exit']);
  t.is(put.comm, 'bash', 'a <...> task named by another line of the same pid');
  const finish = sink.rows.find((r) => r.type === EventType.CmaAllocFinish)!;
  t.deepEqual([finish.pfn, finish.val, finish.flags], [NO_PFN, 0, 1024]);
  const bytes = readFileSync(await importToFile('trace-cmd-report.txt'));
  for (const raw of ['ffff880015a78dc1', 'ffffffff8117c9e4', 'ffffffff81176659', 'ffffffffa0001234']) {
    t.false(bytes.includes(Buffer.from(raw)), `${raw} is not in the capture`);
  }
  t.false(bytes.includes(Buffer.from(new Float64Array([0xffff880015a78dc1]).buffer)));
});

async function importToFile(name: string): Promise<string> {
  const out = tempPath(`${name}.pgref`);
  const run = pageref(['import', fixture(name), '-o', out]);
  if (run.status !== 0) throw new Error(run.stderr);
  return out;
}

test('stacks reach their events across batch boundaries: any batch size gives the same rows', async (t) => {
  for (const name of ['ftrace-seed.txt', 'ftrace-trace.txt', 'trace-cmd-report.txt']) {
    const whole = (await parse(name)).sink.rows;
    for (const batchSize of [1, 2, 3]) {
      const { sink } = await parse(name, { batchSize, pointerKey: undefined });
      t.deepEqual(sink.rows.map((r) => ({ ...r, mapping: r.mapping === 0 })), whole.map((r) => ({ ...r, mapping: r.mapping === 0 })), `${name} in batches of ${batchSize}`);
    }
  }
});

test('frame names: offsets kept, sizes, modules and addresses as the kernel prints them', (t) => {
  t.is(frameName('get_page_from_freelist (ffffffff81176659)'), 'get_page_from_freelist');
  t.is(frameName('try_grab_folio+0x4b/0x2a0'), 'try_grab_folio+0x4b');
  t.is(frameName('nvme_map_data+0x10/0x80 [nvme]'), 'nvme_map_data+0x10 [nvme]');
  t.is(frameName('release_pages+0x254/0x4c0 <ffffffff8117c9e4>'), 'release_pages+0x254');
  t.is(frameName('__page_ref_mod'), '__page_ref_mod');
  t.is(frameName('ffffffffa0001234'), '[unknown]');
  t.is(frameName('<ffffffffa0001234>'), '[unknown]');
});

test('malformed lines: a warning naming the line, the rest imported; --strict stops at the first and leaves no file', (t) => {
  const out = tempPath('damaged.pgref');
  const run = pageref(['import', fixture('ftrace-malformed.txt'), '-o', out]);
  t.is(run.status, 0, run.stderr);
  t.deepEqual(lines(run.stderr), [
    `pageref import: ${fixture('ftrace-malformed.txt')}: line 3: not an ftrace event line`,
    `pageref import: ${fixture('ftrace-malformed.txt')}: line 4: page_ref_mod without a readable pfn`,
  ]);
  t.regex(run.stdout, /imported 2 events/);
  t.regex(run.stdout, /skipped events pageref does not know: mm_page_alloc 1/);
  t.regex(run.stdout, /2 malformed lines skipped/);
  t.is(JSON.parse(pageref(['report', out, '--json']).stdout).events.page_ref_mod, 1);
  const strictOut = tempPath('strict.pgref');
  const strict = pageref(['import', fixture('ftrace-malformed.txt'), '-o', strictOut, '--strict']);
  t.is(strict.status, 1);
  t.deepEqual(lines(strict.stderr), [`pageref import: ${fixture('ftrace-malformed.txt')}: line 3: not an ftrace event line (--strict)`]);
  t.false(existsSync(strictOut));
});

test('--strict through the API throws FtraceTextError naming the line', async (t) => {
  const error = await t.throwsAsync(parse('ftrace-malformed.txt', { strict: true }), { instanceOf: FtraceTextError });
  t.is(error?.message, 'ftrace-malformed.txt: line 3: not an ftrace event line');
});

test('import --json: the documented summary', (t) => {
  const out = tempPath('json.pgref');
  const run = pageref(['import', fixture('ftrace-trace.txt'), '-o', out, '--json', '--kernel', '6.12.117']);
  t.is(run.status, 0, run.stderr);
  t.is(run.stderr, '', 'warnings are in the JSON, not on stderr');
  const summary = JSON.parse(run.stdout);
  t.deepEqual(Object.keys(summary), ['input', 'output', 'imported', 'lines', 'events', 'unknownEvents', 'malformed', 'stacks', 'eventsWithStacks', 'lostEvents', 'spanNs', 'warnings', 'warningCount', 'stopReason']);
  t.is(summary.imported, 9);
  t.is(summary.warningCount, 0);
  t.is(summary.stopReason, 'end of ftrace text');
  t.is(summary.lines, 45);
  t.is(summary.events.cma_release, 1);
  t.is(summary.stacks, 3);
  t.is(summary.spanNs, 2_000_000_000 - 100_000);
  t.deepEqual(summary.warnings, []);
});

test('import errors: an existing output, a missing input, text without any pageref event', (t) => {
  const out = tempPath('exists.pgref');
  writeFileSync(out, 'precious');
  const exists = pageref(['import', fixture('ftrace-seed.txt'), '-o', out]);
  t.is(exists.status, 2);
  t.deepEqual(lines(exists.stderr), [`pageref: ${out} exists; pass --force to replace it`]);
  t.is(readFileSync(out, 'utf8'), 'precious');
  t.is(pageref(['import', fixture('ftrace-seed.txt'), '-o', out, '--force']).status, 0);
  const missingOut = tempPath('never.pgref');
  const missing = pageref(['import', '/nonexistent/trace.txt', '-o', missingOut]);
  t.is(missing.status, 1);
  t.deepEqual(lines(missing.stderr), ['pageref: cannot open /nonexistent/trace.txt: ENOENT']);
  t.false(existsSync(missingOut));
  const other = tempPath('other.txt');
  writeFileSync(other, '          <idle>-0       [000] d..2.   310.000201: sched_switch: prev_comm=swapper/0 prev_pid=0\n');
  const noneOut = tempPath('none.pgref');
  const none = pageref(['import', other, '-o', noneOut]);
  t.is(none.status, 1);
  t.deepEqual(lines(none.stderr), [`pageref import: ${other} holds no page_ref, test_pages_isolated or cma event; no capture written`]);
  t.false(existsSync(noneOut), 'a failed import leaves no file, without --strict too');
});

/** `pageref import FIFO -o OUT` in the background: its exit status (or "still running" after 20 s, then killed) and what it printed. */
function importFromFifo(fifo: string, out: string) {
  const child = spawn(process.execPath, [PAGEREF, 'import', fifo, '-o', out], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (output.stdout += d));
  child.stderr.on('data', (d) => (output.stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  /** Sends `signal`, then waits for the exit. */
  const stop = async (signal: NodeJS.Signals): Promise<number | null | 'still running'> => {
    child.kill(signal);
    const code = await Promise.race([exited, new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 20_000))]);
    if (code === 'still running') child.kill('SIGKILL');
    return code;
  };
  return { output, stop };
}

test('SIGINT while an import waits for a FIFO\'s writer ends the wait: exit 1, no file', async (t) => {
  const dir = dirname(tempPath('x'));
  const fifo = join(dir, 'lonely.fifo');
  t.is(spawnSync('mkfifo', [fifo]).status, 0);
  const out = join(dir, 'lonely.pgref');
  const run = importFromFifo(fifo, out);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const code = await run.stop('SIGINT');
  t.is(code, 1, run.output.stderr);
  t.regex(run.output.stderr, /holds no page_ref, test_pages_isolated or cma event \(stopped by SIGINT at line 0\); no capture written/);
  t.false(existsSync(out));
});

test('import of binary garbage: at most 10 warnings and a count of the rest, exit 1, no file left', (t) => {
  const garbage = tempPath('garbage.bin');
  // 4 KiB from a fixed-seed generator: newlines enough for dozens of malformed lines.
  const bytes = Buffer.alloc(4096);
  let x = 12345;
  for (let i = 0; i < bytes.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  writeFileSync(garbage, bytes);
  const out = tempPath('garbage.pgref');
  const run = pageref(['import', garbage, '-o', out]);
  t.is(run.status, 1, run.stderr);
  t.false(existsSync(out));
  const stderr = lines(run.stderr);
  const json = JSON.parse(pageref(['import', garbage, '-o', out, '--json']).stdout);
  t.true(json.warningCount > 12, `${json.warningCount} warnings`);
  t.is(json.warnings.length, Math.min(json.warningCount, 20));
  t.is(json.output, null);
  t.false(existsSync(out));
  t.is(stderr.length, 12, run.stderr);
  t.true(stderr.slice(0, 10).every((l) => l.startsWith(`pageref import: ${garbage}: line `)), run.stderr);
  t.is(stderr[10], `pageref import: ${garbage}: ${json.warningCount - 10} more warnings not shown (${json.warningCount} in all)`);
  t.regex(stderr[11], /holds no page_ref, test_pages_isolated or cma event; no capture written$/);
});

test('SIGINT and SIGTERM stop an import from a FIFO: the capture is finished with what was read', async (t) => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const dir = dirname(tempPath('x'));
    const fifo = join(dir, 'trace.fifo');
    t.is(spawnSync('mkfifo', [fifo]).status, 0);
    const out = join(dir, 'fifo.pgref');
    const run = importFromFifo(fifo, out);
    // The writer stays open: without the signal, the import would wait for more text.
    const writer = await open(fifo, 'w');
    await writer.write(readFileSync(fixture('ftrace-seed.txt')));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const code = await run.stop(signal);
    await writer.close();
    t.is(code, 0, signal);
    t.regex(run.output.stdout, new RegExp(`imported 4 events .*\\n.*\\nstopped by ${signal} after line \\d+`));
    const report = JSON.parse(pageref(['report', out, '--json']).stdout);
    t.is(report.capture.stopReason, signal);
    t.is(report.capture.truncated, null);
    t.is(report.events.test_pages_isolated, 1);
  }
});

test('an imported capture replays through report, top --replay and the capture reader like any other', (t) => {
  const out = tempPath('replay.pgref');
  t.is(pageref(['import', fixture('ftrace-trace.txt'), '-o', out]).status, 0);
  const replay = replayCapture(out, new RowSink());
  t.is(replay.truncated, undefined, 'the capture is finished');
  const top = pageref(['top', '--replay', out, '--json', '--speed', 'max', '--batch', '5']);
  t.is(top.status, 0, top.stderr);
  const snapshots = top.stdout.trim().split('\n').map((line) => JSON.parse(line));
  const last = snapshots[snapshots.length - 1];
  t.is(last.isolationFailures, 1);
  t.true(last.failures.some((f: { pfn: string }) => f.pfn === '0x12345'));
  const text = pageref(['report', out]);
  t.is(text.status, 0);
  t.regex(text.stdout, /stopped by end of ftrace text; the kernel lost 3 events/);
});

test('options/latency-format: comm-pid, cpu and irq-info run together, microseconds since the buffer started', async (t) => {
  const { sink, result } = await parse('ftrace-latency.txt', { kernelRelease: '6.12.117' });
  t.is(result.malformed, 0, result.warnings.join('\n'));
  t.deepEqual(sink.rows.map((r) => [r.type, r.comm, r.pid, r.cpu, r.tsNs]), [
    [EventType.PageRefSet, 'page-chu', 1201, 0, 0],
    [EventType.PageRefMod, 'page-chu', 1201, 0, 12_000],
    [EventType.PageRefModAndTest, 'kswapd0', 45, 1, 1_500_250_000],
  ]);
  t.is(sink.rows[2].val, -1);
});

test('stacks start at the __page_ref_* function, as pageref records them, without the tracing machinery above it', async (t) => {
  const text = [
    '      page-churn-100     [000] .....    46.515373: page_ref_set: pfn=0x889c flags=none count=1 mapcount=0 mapping=0000000000000000 mt=0 val=1',
    '      page-churn-100     [000] .....    46.515489: <stack trace>',
    ' => trace_event_raw_event_page_ref_mod_template',
    ' => __traceiter_page_ref_set',
    ' => __page_ref_set',
    ' => get_page_from_freelist',
    '      cma-100     [000] .....    46.515490: test_pages_isolated: start_pfn=0x800 end_pfn=0xc00 fin_pfn=0xc00 ret=success',
    '      cma-100     [000] .....    46.515491: <stack trace>',
    ' => trace_event_raw_event_test_pages_isolated',
    ' => __traceiter_test_pages_isolated',
    ' => test_pages_isolated',
    ' => alloc_contig_range',
  ].join('\n');
  const sink = new RowSink();
  await importFtraceStream(Readable.from(text), sink, { name: 'x' });
  t.deepEqual(sink.rows.map((r) => r.stack), [['__page_ref_set', 'get_page_from_freelist'], ['test_pages_isolated', 'alloc_contig_range']]);
});

test('the text is streamed: batches reach the sink while the input is still being read, each at most the batch size', async (t) => {
  let produced = 0;
  let producedAtFirstBatch = -1;
  const total = 50_000;
  async function* lines() {
    for (let i = 0; i < total; i++) {
      produced++;
      yield `   churn-7     [001] .....   10.${String(i).padStart(6, '0')}: page_ref_mod: pfn=0x${(0x1000 + (i % 100)).toString(16)} flags=0x0 count=2 mapcount=0 mapping=(nil) mt=1 val=1\n`;
    }
  }
  const sizes: number[] = [];
  const sink: CaptureSink = {
    header: () => {},
    stacks: () => {},
    events: (batch) => {
      if (producedAtFirstBatch < 0) producedAtFirstBatch = produced;
      sizes.push(batch.length);
    },
    counters: () => {},
    end: () => {},
  };
  const result = await importFtraceStream(Readable.from(lines()), sink, { name: 'generated', batchSize: 1000 });
  t.is(result.events.page_ref_mod, total);
  t.true(producedAtFirstBatch > 0 && producedAtFirstBatch < total / 2, `the first batch came after ${producedAtFirstBatch} of ${total} lines`);
  t.true(sizes.every((n) => n <= 1000));
  t.is(sizes.reduce((a, b) => a + b, 0), total);
});

test('import - reads stdin', (t) => {
  const out = tempPath('stdin.pgref');
  const run = spawnSync(process.execPath, [PAGEREF, 'import', '-', '-o', out, '--json'], { input: readFileSync(fixture('ftrace-seed.txt')), encoding: 'utf8' });
  t.is(run.status, 0, run.stderr);
  t.is(JSON.parse(run.stdout).input, '-');
  t.is(JSON.parse(pageref(['report', out, '--json']).stdout).capture.source, 'ftrace text: stdin');
});

test('the trace file header says how many events were overwritten: they count as lost', async (t) => {
  const text = [
    '# tracer: nop',
    '# entries-in-buffer/entries-written: 1/250   #P:2',
    '      page-churn-100     [000] .....    46.515373: page_ref_set: pfn=0x889c flags=none count=1 mapcount=0 mapping=(null) mt=0 val=1',
  ].join('\n');
  const sink = new RowSink();
  const result = await importFtraceStream(Readable.from(text), sink, { name: 'x' });
  t.is(result.lostEvents, 249);
  t.regex(sink.ended?.trailer?.stopReason ?? '', /the kernel lost 249 events/);
});

test('lines of 200,000 blanks, dashes or frame text take linear time: each took a minute when the patterns backtracked', async (t) => {
  const event = 'a-1 [000] 1.000001: page_ref_mod: pfn=0x1 flags=0x0 count=2 mapcount=0 mapping=(nil) mt=1 val=1';
  for (const [name, line] of [
    ['tabs', '\t'.repeat(200_000)],
    ['blanks, then comm-pid shapes', ' '.repeat(100_000) + 'x-1 ' + 'a-1 [1] 1.'.repeat(10_000)],
    ['a stack frame with a blank run', ' => a' + ' '.repeat(200_000) + 'b'],
    ['a stack frame with a blank run before "<"', ' => a' + ' '.repeat(200_000) + '<1'],
  ]) {
    const sink = new RowSink();
    const started = performance.now();
    await importFtraceStream(Readable.from(`${event}\n${line}\n`), sink, { name });
    const ms = performance.now() - started;
    // Linear: tens of ms; quadratic: 20,000 tabs took 650 ms, so 200,000 a minute. The margin is for a loaded machine.
    t.true(ms < 5000, `${name}: ${ms.toFixed(0)} ms`);
    t.is(sink.rows.length, 1, name);
  }
});

test('a pid, cpu or timestamp beyond what the columns hold is a malformed line, not a wrapped or infinite number', async (t) => {
  const fields = 'page_ref_mod: pfn=0x1 flags=0x0 count=2 mapcount=0 mapping=(nil) mt=1 val=1';
  const text = [`a-1 [000] 1.000001: ${fields}`, `a-99999999999 [000] 1.000002: ${fields}`, `a-1 [99999999] 1.000003: ${fields}`, `a-1 [000] ${'9'.repeat(400)}.000004: ${fields}`].join('\n');
  const sink = new RowSink();
  const warnings: string[] = [];
  const result = await importFtraceStream(Readable.from(text), sink, { name: 'huge', onWarning: (w) => warnings.push(w) });
  t.deepEqual(warnings, [2, 3, 4].map((line) => `line ${line}: a pid, cpu or timestamp out of range`));
  t.is(sink.rows.length, 1);
  t.is(result.spanNs, 0);
  await t.throwsAsync(importFtraceStream(Readable.from(text), new RowSink(), { name: 'huge', strict: true }), { instanceOf: FtraceTextError, message: 'huge: line 2: a pid, cpu or timestamp out of range' });
});

test('a warning quotes at most 40 characters of the text it names (an unknown page flag, an isolation result)', async (t) => {
  const warnings: string[] = [];
  const text = [
    `a-1 [000] 1.000001: page_ref_mod: pfn=0x1 flags=lru|${'='.repeat(5000)} count=2 mapcount=0 mapping=(nil) mt=1 val=1`,
    `a-1 [000] 1.000002: test_pages_isolated: start_pfn=0x1 end_pfn=0x2 fin_pfn=0x1 ret=${'x'.repeat(5000)}`,
  ].join('\n');
  await importFtraceStream(Readable.from(text), new RowSink(), { name: 'flags', onWarning: (w) => warnings.push(w) });
  t.deepEqual(warnings.slice(1), [`line 1: page flag "${'='.repeat(40)}..." is not in the flag table; left out`, `line 2: test_pages_isolated with ret "${'x'.repeat(40)}...", not fail or success`]);
});

test('a page_ref event with the all-ones pfn (a CMA event\'s "no pfn") is malformed, not a pfn of -1', async (t) => {
  const sink = new RowSink();
  const warnings: string[] = [];
  await importFtraceStream(Readable.from('a-1 [000] 1.000001: page_ref_mod: pfn=0xffffffffffffffff flags=0x0 count=2 mapcount=0 mapping=(nil) mt=1 val=1\n'), sink, { name: 'ones', onWarning: (w) => warnings.push(w) });
  t.deepEqual(warnings, ['line 1: page_ref_mod without a readable pfn']);
  t.is(sink.rows.length, 0);
});
