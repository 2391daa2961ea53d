// pageref record killed on real kernels: each test kernel boots once and
// runs test/vm/kill-guest.sh, which SIGKILLs record at seeded random moments
// (while it loads and attaches its programs, and while it records
// page-churn's events) and lists the BPF programs, links and maps with
// bpftool before, during and after each run; then stops one record with
// SIGTERM. A killed record must leave a capture that reads back up to its
// last whole frame with the cut reported, or, killed before its header, no
// file; and the kernel must release everything it loaded, as it does for a
// record that exits.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { findKernels, KernelImage } from '../../src/vm/kernels';
import type { VmResult } from '../../src/vm/qemu';
import { PAGEREF } from '../helpers/cli';
import { readBack, walkFrames } from '../helpers/cut-capture';
import { forEachKernel, guestFile, oneBootPerKernel } from './guest-runs';

/** Trials on the newest kernel: 12 in `npm test`, 50 by `npm run kill-trials` (each ~13 s under TCG on 6.12). */
const TRIALS = Number(process.env.PAGEREF_KILL_TRIALS ?? 12);
// A record each, a Node start-up and an attach under TCG, and the bpftool listings.
const TIMEOUT_SEC = 300 + 20 * TRIALS;
const SEED = 0x51c4;
/** Program names of bpf/pageref.bpf.c as the kernel keeps them (15 characters at most). */
const PAGEREF_PROGRAM = /^(btf_page_ref_|page_ref_|test_pages_iso|cma_)/;

function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

interface Trial {
  kind: 'load' | 'run';
  seconds: number;
}

// "load": up to 2 s after bpftool first lists one of its programs (attaching
// all takes ~3 s under TCG); "run": up to 2 s after the capture reached 64 KiB.
const random = lcg(SEED);
const tenths = (seconds: number) => Math.round(seconds * 10) / 10;
/**
 * On the newest kernel TRIALS trials, one in three while record loads, the
 * others while it records; on the others the first 3. bpftool lists the
 * programs, links and maps during and after each of the first 3 (LISTED)
 * trials, and after all of them: each listing costs seconds under TCG.
 */
const LISTED = 3;
const allTrials: Trial[] = Array.from({ length: TRIALS }, (_, i) => ({ kind: i % 3 === 0 ? 'load' : 'run', seconds: tenths(2 * random()) }));
const newestKernel = findKernels().pop()?.name;
const trialsOn = (kernel: KernelImage) => (kernel.name === newestKernel ? allTrials : allTrials.slice(0, LISTED));
const killPlan = (kernel: KernelImage) => trialsOn(kernel).map((trial) => `${trial.kind}:${trial.seconds}`).join(' ');

const guestRun = oneBootPerKernel((kernel) => `KILL_PLAN='${killPlan(kernel)}' LISTED_TRIALS=${LISTED} sh test/vm/kill-guest.sh`, TIMEOUT_SEC);

interface BpfObject {
  id: number;
  type: string;
  name?: string;
  prog_id?: number;
}

/** One of bpftool's JSON lists the guest left, or a failed assertion naming it. */
function bpfList(run: VmResult, name: string): BpfObject[] {
  const text = guestFile(run, name);
  try {
    return JSON.parse(text) as BpfObject[];
  } catch {
    throw new Error(`${name} is not bpftool's JSON: ${text.slice(0, 500)}`);
  }
}

function ids(objects: BpfObject[]): number[] {
  return objects.map((o) => o.id).sort((a, b) => a - b);
}

/** What `pageref report` and `--json` say about a capture, by the CLI. */
function report(path: string) {
  const text = spawnSync(process.execPath, [PAGEREF, 'report', path], { encoding: 'utf8' });
  const json = spawnSync(process.execPath, [PAGEREF, 'report', path, '--json'], { encoding: 'utf8' });
  return { text, json, parsed: json.status === 0 ? (JSON.parse(json.stdout) as { capture: { truncated: string | null; stopReason: string | null }; events: Record<string, number> }) : undefined };
}

forEachKernel('kill', registerKillTests);

function registerKillTests(kernel: KernelImage): void {
  const name = kernel.name;

  const trials = trialsOn(kernel);

  test(`${name}: record SIGKILLed at ${trials.length} random moments: every whole frame reads back and report says where it was cut`, async (t) => {
    const run = await guestRun(kernel);
    t.log(`${name}: guest ran ${run.seconds.toFixed(0)} s; kill plan (seed 0x${SEED.toString(16)}): ${killPlan(kernel)}`);
    t.is(run.exitCode, 0, run.log);
    for (const [i, trial] of trials.entries()) {
      const n = i + 1;
      const what = `trial ${n} (${trial.kind}, ${trial.seconds} s)`;
      const log = guestFile(run, `kill-${n}.log`);
      // The shell's status of a process killed by signal 9.
      t.is(guestFile(run, `kill-${n}.rc`).trim(), '137', `${what}: ${log}`);
      const path = join(run.outDir, `kill-${n}.pgref`);
      if (trial.kind === 'load' && !existsSync(path)) {
        // Killed before the header: then there must be no file at all, and record cannot have attached.
        t.notRegex(log, /attached/, `${what}: record attached but left no capture`);
        t.log(`${what}: killed before its header, no file: ${log.trim() || '(no output yet)'}`);
        continue;
      }
      if (trial.kind === 'run') t.regex(log, /^pageref record: attached \d+ programs/m, `${what}: ${log}`);
      t.true(existsSync(path), `${what}: no capture`);
      const walk = walkFrames(path);
      const read = readBack(path);
      t.true(walk.magic);
      t.is(read.frames, walk.frames, `${what}: whole frames read back`);
      t.truthy(read.truncated, `${what}: the cut is not reported`);
      if (trial.kind === 'run') t.true(read.rows.length > 0, `${what}: no events read back`);
      const { text, json, parsed } = report(path);
      t.is(text.status, 0, text.stderr);
      t.is(json.status, 0, json.stderr);
      t.true(text.stdout.includes(`\nWARNING: capture incomplete: ${read.truncated}\n`), text.stdout);
      t.is(parsed?.capture.truncated, read.truncated);
      t.is(Object.values(parsed?.events ?? {}).reduce((a, b) => a + b, 0), read.rows.length);
      t.log(`${what}: ${read.rows.length} events in ${walk.frames} whole frames, ${walk.tailBytes} bytes after them; report: ${read.truncated}`);
    }
  });

  test(`${name}: the programs, links and maps of a SIGKILLed record are released; bpftool lists them while it records`, async (t) => {
    const run = await guestRun(kernel);
    const before = { progs: bpfList(run, 'before-progs.json'), links: bpfList(run, 'before-links.json'), maps: bpfList(run, 'before-maps.json') };
    // Whatever the kills interrupted, after the last one the kernel holds what it held before.
    t.deepEqual(ids(bpfList(run, 'after-all-progs.json')), ids(before.progs), `programs after ${trials.length} SIGKILLs`);
    t.deepEqual(ids(bpfList(run, 'after-all-links.json')), ids(before.links), `links after ${trials.length} SIGKILLs`);
    t.deepEqual(ids(bpfList(run, 'after-all-maps.json')), ids(before.maps), `maps after ${trials.length} SIGKILLs`);
    for (const [i, trial] of trials.slice(0, LISTED).entries()) {
      const n = i + 1;
      const what = `trial ${n} (${trial.kind}, ${trial.seconds} s)`;
      if (trial.kind === 'run') {
        const attached = /^pageref record: attached (\d+) programs/m.exec(guestFile(run, `kill-${n}.log`));
        t.truthy(attached, `${what}: ${guestFile(run, `kill-${n}.log`)}`);
        const beforeProgs = new Set(ids(before.progs));
        const progs = bpfList(run, `during-${n}-progs.json`).filter((p) => !beforeProgs.has(p.id));
        const progIds = new Set(ids(progs));
        const links = bpfList(run, `during-${n}-links.json`).filter((l) => l.prog_id !== undefined && progIds.has(l.prog_id));
        const beforeMaps = new Set(ids(before.maps));
        const maps = bpfList(run, `during-${n}-maps.json`).filter((m) => !beforeMaps.has(m.id));
        t.deepEqual(progs.filter((p) => !PAGEREF_PROGRAM.test(p.name ?? '') || !['tracing', 'tracepoint'].includes(p.type)), [], `${what}: programs that are not pageref's`);
        t.is(links.length, Number(attached?.[1]), `${what}: one link per attached program: ${JSON.stringify(links)}`);
        t.true(progs.length >= links.length);
        t.true(maps.some((m) => m.type === 'ringbuf'), `${what}: no ring buffer among ${JSON.stringify(maps.map((m) => `${m.name}:${m.type}`))}`);
        const after = { progs: ids(bpfList(run, `after-${n}-progs.json`)), links: ids(bpfList(run, `after-${n}-links.json`)), maps: ids(bpfList(run, `after-${n}-maps.json`)) };
        t.deepEqual(after.progs.filter((id) => progIds.has(id)), [], `${what}: programs left after SIGKILL`);
        t.deepEqual(after.links.filter((id) => links.some((l) => l.id === id)), [], `${what}: links left after SIGKILL`);
        t.deepEqual(after.maps.filter((id) => maps.some((m) => m.id === id)), [], `${what}: maps left after SIGKILL`);
        t.log(`${what}: during ${progs.length} programs (${progs.map((p) => `${p.name}:${p.type}`).join(' ')}), ${links.length} links (${[...new Set(links.map((l) => l.type))].join(', ')}), ${maps.length} maps; all gone ${Number(guestFile(run, `after-${n}-waited.txt`)) / 10} s after the kill`);
      }
      if (trial.kind === 'load') {
        const beforeProgs = new Set(ids(before.progs));
        // libbpf's probe that loading works (a nameless socket filter) may be listed too.
        const loading = bpfList(run, `loading-${n}-progs.json`).filter((p) => !beforeProgs.has(p.id) && !(p.type === 'socket_filter' && !p.name));
        t.true(loading.length > 0 && loading.every((p) => PAGEREF_PROGRAM.test(p.name ?? '')), `${what}: the programs listed while it loaded: ${JSON.stringify(loading)}`);
        t.log(`${what}: ${loading.length} programs loaded ${trial.seconds} s before the kill; all gone ${Number(guestFile(run, `after-${n}-waited.txt`)) / 10} s after it`);
      }
      // Whatever the kill interrupted (loading, attaching, recording), the kernel holds what it held before.
      t.deepEqual(ids(bpfList(run, `after-${n}-progs.json`)), ids(before.progs), `${what}: programs after SIGKILL`);
      t.deepEqual(ids(bpfList(run, `after-${n}-links.json`)), ids(before.links), `${what}: links after SIGKILL`);
      t.deepEqual(ids(bpfList(run, `after-${n}-maps.json`)), ids(before.maps), `${what}: maps after SIGKILL`);
    }
  });

  test(`${name}: record stopped by SIGTERM finishes its capture and releases its programs`, async (t) => {
    const run = await guestRun(kernel);
    const log = guestFile(run, 'term.log');
    t.is(guestFile(run, 'term.rc').trim(), '0', log);
    t.regex(log, /stopped by SIGTERM/, log);
    const path = join(run.outDir, 'term.pgref');
    const read = readBack(path);
    t.is(read.truncated, undefined);
    t.true(read.rows.length > 0, 'no events in 1 s of page-churn');
    const { json, parsed } = report(path);
    t.is(json.status, 0, json.stderr);
    t.is(parsed?.capture.stopReason, 'SIGTERM');
    t.is(parsed?.capture.truncated, null);
    t.deepEqual(ids(bpfList(run, 'after-term-progs.json')), ids(bpfList(run, 'before-progs.json')));
    t.deepEqual(ids(bpfList(run, 'after-term-links.json')), ids(bpfList(run, 'before-links.json')));
  });
}
