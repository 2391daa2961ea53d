// SIGKILL at random moments leaves a capture from which every whole frame is
// read back and the cut is reported. `pageref record` needs the page_ref
// tracepoints, which this machine's kernel lacks (test/vm/kill.test.ts kills
// it in the VM), so here `pageref import` is killed instead: it writes
// through the same CaptureWriter. It reads generated ftrace text from a pipe
// that this test keeps feeding and never closes, so every kill lands while
// it is parsing and writing, and no trailer can have been written.

import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { readBack, walkFrames } from './helpers/cut-capture';
import { PAGEREF } from './helpers/cli';
import { tempPath } from './helpers/capture';
import { replayCapture } from '../src/capture/capture-reader';
import { CaptureSummary, reportJson } from '../src/report/capture-summary';
import { renderReport } from '../src/report/report-text';

const TRIALS = 50;
const SEED = 0x5eed0007;
/** Events of the generated text: ~5 MB, 15 event frames of 4,096 (the importer's batch). */
const EVENTS = 64_000;
const CHUNK = 64 * 1024;

function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** page_ref events of three tasks on two CPUs, a stack on one in eight, a failed isolation now and then. */
function ftraceText(random: () => number): Buffer {
  const lines: string[] = [];
  for (let i = 0; i < EVENTS; i++) {
    const cpu = i % 2;
    const task = `churn-${700 + (i % 3)}`.padStart(16);
    const ts = `${10 + Math.floor(i / 1e5)}.${String(i % 1e5).padStart(5, '0')}${i % 10}`;
    const pfn = (0x10000 + Math.floor(random() * 20_000)).toString(16);
    const mapping = random() < 0.3 ? '(null)' : `0xffff8880${Math.floor(random() * 0xffff).toString(16).padStart(8, '0')}`;
    const r = random();
    if (r < 0.002) {
      lines.push(`${task} [00${cpu}] .....  ${ts}: test_pages_isolated: start_pfn=0x${pfn} end_pfn=0x${(parseInt(pfn, 16) + 0x400).toString(16)} fin_pfn=0x${pfn} ret=fail`);
      continue;
    }
    const event = r < 0.5 ? `page_ref_mod: pfn=0x${pfn} flags=0x0 count=${2 + (i % 4)} mapcount=0 mapping=${mapping} mt=1 val=1`
      : r < 0.9 ? `page_ref_mod_and_test: pfn=0x${pfn} flags=0x0 count=${i % 4} mapcount=0 mapping=${mapping} mt=1 val=-1 ret=${i % 4 === 0 ? 1 : 0}`
      : `page_ref_set: pfn=0x${pfn} flags=0x0 count=1 mapcount=0 mapping=(null) mt=1 val=1`;
    lines.push(`${task} [00${cpu}] .....  ${ts}: ${event}`);
    if (i % 8 === 0) lines.push(`${task} [00${cpu}] .....  ${ts}: <stack trace>`, ' => __page_ref_mod', ` => caller_${i % 29}+0x1f/0x80`, ' => handle_mm_fault+0x2a/0x300');
  }
  return Buffer.from(lines.join('\n') + '\n');
}

type KillPlan =
  /** Killed at `ms` after the start, before any input: during Node's start-up or waiting for the first line. */
  | { kind: 'start-up'; ms: number }
  /** Killed `ms` after the pipe took `bytes` of the text, the feed going on meanwhile. */
  | { kind: 'mid-stream'; bytes: number; ms: number };

/** Runs `pageref import - -o out` on a feed of `text` that never ends, kills it by `plan`; resolves with the signal that ended it. */
function killedImport(text: Buffer, out: string, plan: KillPlan): Promise<NodeJS.Signals | null> {
  const child = spawn(process.execPath, [PAGEREF, 'import', '-', '-o', out], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  // The pipe breaks when the child dies: expected here.
  child.stdin.on('error', () => {});
  let alive = true;
  void exited.then(() => (alive = false));
  const kill = () => child.kill('SIGKILL');
  if (plan.kind === 'start-up') {
    setTimeout(kill, plan.ms);
    return exited;
  }
  void (async () => {
    let fed = 0;
    let armed = false;
    while (alive && fed < text.length) {
      const chunk = text.subarray(fed, fed + CHUNK);
      if (!child.stdin.write(chunk)) await new Promise((resolve) => (child.stdin.once('drain', resolve), void exited.then(resolve)));
      fed += chunk.length;
      if (!armed && fed >= plan.bytes) {
        armed = true;
        setTimeout(kill, plan.ms);
      }
    }
    // All fed and the kill not due yet: stdin stays open, so no trailer can be written.
  })();
  return exited;
}

/** The unkilled run, fed the whole text; also how long after its start the capture appeared. */
async function wholeImport(text: Buffer, out: string): Promise<{ status: number | null; stderr: string; fileAfterMs: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [PAGEREF, 'import', '-', '-o', out], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let fileAfterMs = -1;
  const poll = setInterval(() => {
    if (fileAfterMs < 0 && existsSync(out)) fileAfterMs = Date.now() - started;
  }, 2);
  child.stdin.end(text);
  const status = await exited;
  clearInterval(poll);
  return { status, stderr, fileAfterMs };
}

interface Reported {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `pageref report FILE` and `--json`: by the CLI (exit status included), or,
 * to spare two Node start-ups, in this process by the code the CLI runs.
 */
function reports(path: string, cli: boolean): { text: Reported; json: Reported } {
  if (cli) {
    const run = (json: boolean) => spawnSync(process.execPath, [PAGEREF, 'report', path, ...(json ? ['--json'] : [])], { encoding: 'utf8' });
    return { text: run(false), json: run(true) };
  }
  try {
    const summary = new CaptureSummary();
    replayCapture(path, summary);
    const json = reportJson(summary, 20);
    return { text: { status: 0, stdout: renderReport(json), stderr: '' }, json: { status: 0, stdout: JSON.stringify(json), stderr: '' } };
  } catch (error) {
    const failed = { status: 1, stdout: '', stderr: String(error) };
    return { text: failed, json: failed };
  }
}

test(`SIGKILL at ${TRIALS} random moments: every whole frame reads back, a prefix of the unkilled capture, and report says where it was cut`, async (t) => {
  const random = lcg(SEED);
  const text = ftraceText(random);
  const full = tempPath('full.pgref');
  const whole = await wholeImport(text, full);
  t.is(whole.status, 0, whole.stderr);
  const reference = readBack(full);
  t.is(reference.truncated, undefined, 'the unkilled import is finished');
  t.true(reference.rows.length > 60_000);
  t.true(whole.fileAfterMs > 0);

  // One in ten killed before any input, the kill spread around the moment the
  // unkilled run created its file; the rest once the pipe has taken a random
  // part of the text, plus up to 30 ms.
  const plans: KillPlan[] = [];
  for (let i = 0; i < TRIALS; i++) {
    plans.push(
      i % 10 === 0
        ? { kind: 'start-up', ms: Math.floor((0.5 + 1.5 * random()) * whole.fileAfterMs) }
        : { kind: 'mid-stream', bytes: Math.floor(256 * 1024 + random() * (text.length - 256 * 1024)), ms: Math.floor(random() * 30) },
    );
  }
  const outcomes = { noFile: 0, atFrameBoundary: 0, tornFrame: 0 };
  const eventsRead: number[] = [];
  const started = Date.now();
  const trial = async (i: number) => {
    const plan = plans[i];
    const out = tempPath(`killed-${i}.pgref`);
    const what = `trial ${i} (${JSON.stringify(plan)})`;
    const signal = await killedImport(text, out, plan);
    t.is(signal, 'SIGKILL', `${what}: the import ended by itself`);
    if (plan.kind === 'start-up') {
      // No line was read, so no header was written: a file here could only be one that no command can read.
      t.false(existsSync(out), `${what}: a file without a header was left behind`);
      outcomes.noFile++;
      return;
    }
    if (!existsSync(out)) {
      t.fail(`${what}: no capture after ${plan.bytes} bytes of input`);
      return;
    }
    const walk = walkFrames(out);
    const read = readBack(out);
    t.true(walk.magic, `${what}: no magic bytes`);
    t.is(read.frames, walk.frames, `${what}: whole frames read back`);
    t.truthy(read.truncated, `${what}: the cut is not reported`);
    if (walk.tailBytes === 0) outcomes.atFrameBoundary++;
    else outcomes.tornFrame++;
    t.true(read.rows.length < reference.rows.length, `${what}: ${read.rows.length} events, as many as the whole text`);
    const firstDifference = read.rows.findIndex((row, k) => row !== reference.rows[k]);
    t.is(firstDifference, -1, `${what}: event ${firstDifference} is not the unkilled capture's: ${read.rows[firstDifference]} / ${reference.rows[firstDifference]}`);
    eventsRead.push(read.rows.length);

    // Through the CLI on one trial in five, for the exit status; each run costs a Node start-up.
    const cli = i % 5 === 1;
    const { text: textReport, json } = reports(out, cli);
    t.is(json.status, 0, `${what}: report --json: ${json.stderr}`);
    const summary = JSON.parse(json.stdout) as { capture: { truncated: string | null }; events: Record<string, number> };
    t.is(summary.capture.truncated, read.truncated ?? null);
    t.is(Object.values(summary.events).reduce((a, b) => a + b, 0), read.rows.length);
    t.is(textReport.status, 0, `${what}: report: ${textReport.stderr}`);
    t.true(textReport.stdout.includes(`\nWARNING: capture incomplete: ${read.truncated}\n`), textReport.stdout);
    rmSync(out);
  };
  // Two trials at a time: each is mostly a Node start-up, and there are two cores.
  let next = 0;
  const worker = async () => {
    while (next < plans.length) await trial(next++);
  };
  await Promise.all([worker(), worker()]);
  t.log(`${TRIALS} trials in ${((Date.now() - started) / 1000).toFixed(1)} s, seed 0x${SEED.toString(16)}, the unkilled capture's file after ${whole.fileAfterMs} ms: ${JSON.stringify(outcomes)}; events read back ${Math.min(...eventsRead)} to ${Math.max(...eventsRead)} of ${reference.rows.length}`);
  // The kills landed all over the run, not all at its start or its end.
  t.true(new Set(eventsRead).size >= 6, `events read back: ${eventsRead.join(' ')}`);
  t.true(eventsRead.filter((n) => n > 0).length >= eventsRead.length / 2, `events read back: ${eventsRead.join(' ')}`);
});
