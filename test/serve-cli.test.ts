// `pageref serve` on this machine's kernel, which has BPF but no page_ref
// tracepoints (as test/native-tracer.test.ts relies on too): it must keep
// serving the events the kernel has, say so in /metrics, answer SIGHUP and
// SIGTERM, and refuse a port that is taken. The page_ref path itself is
// test/vm/serve.test.ts, in the test kernels.

import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { createServer } from 'node:net';
import { runDoctor } from '../src/doctor/doctor';
import { tempPath } from './helpers/capture';
import { PAGEREF, pageref } from './helpers/cli';
import { parseExposition } from './helpers/exposition';

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const readLog = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : '');

test('a kernel without page_ref: serve says so in /metrics and serves the events it has; SIGHUP reopens the log; SIGTERM exits 0', async (t) => {
  const doctor = runDoctor({ mountTracefs: true });
  t.false(doctor.events.present.some((e) => e.startsWith('page_ref_')), 'this test needs a kernel without page_ref (as this machine\'s is)');
  const log = tempPath('serve.log');
  // --max-pfns: the per-pfn array of every pfn would be 96 MiB of kernel memory.
  const child = spawn(process.execPath, [PAGEREF, 'serve', '--listen', '127.0.0.1:0', '--all-pfns', '--max-pfns', '4096', '--log', log], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => child.kill('SIGKILL'));
  const url = await until('serve to attach', () => /serving (http:\/\/127\.0\.0\.1:\d+)\/metrics$/m.exec(readLog(log))?.[1]);
  t.regex(readLog(log), /the kernel has no page_ref tracepoints: serving its isolation and CMA events only/);

  const response = await fetch(`${url}/metrics`);
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const families = parseExposition(await response.text());
  t.is(families.get('pageref_page_ref_available')?.samples[0].value, 0);
  const events = families.get('pageref_events_total')?.samples.map((s) => s.labels.event) ?? [];
  t.deepEqual(events, doctor.events.present, 'a series for each event the kernel has');
  t.is(families.get('pageref_isolation_failures_total')?.samples[0].value, 0);
  t.is((await fetch(`${url}/nothing`)).status, 404);
  t.is((await fetch(`${url}/metrics`, { method: 'POST' })).status, 405);

  renameSync(log, `${log}.1`);
  child.kill('SIGHUP');
  await until('the log to be reopened', () => (/SIGHUP: log reopened/.test(readLog(log)) ? true : undefined));
  child.kill('SIGTERM');
  t.is(await exited, 0);
  t.regex(readLog(log), /pageref serve: stopped by SIGTERM/);
  await t.throwsAsync(fetch(`${url}/metrics`), undefined, 'the server is closed');
});

test('a port that is taken: one line, exit status 1, nothing loaded', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => taken.close());
  const port = (taken.address() as { port: number }).port;
  const run = pageref(['serve', '--listen', `127.0.0.1:${port}`, '--all-pfns', '--max-pfns', '4096']);
  t.is(run.status, 1, run.stderr);
  t.regex(run.stderr, new RegExp(`pageref serve: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
  t.notRegex(run.stderr, /attached/);
});

test('the flight recorder\'s options: each needs --flight-dir, --flight-dir refuses --aggregate (usage, exit 2), and a folder that is not there exits 1 before anything is loaded', (t) => {
  const lone = pageref(['serve', '--flight-after', '3']);
  t.is(lone.status, 2, lone.stderr);
  t.regex(lone.stderr, /--flight-after is for the flight recorder: it needs --flight-dir/);
  const aggregate = pageref(['serve', '--flight-dir', tempPath('x'), '--aggregate']);
  t.is(aggregate.status, 2, aggregate.stderr);
  t.regex(aggregate.stderr, /--flight-dir needs page_ref records; --aggregate keeps totals instead/);
  const missing = pageref(['serve', '--listen', '127.0.0.1:0', '--all-pfns', '--flight-dir', tempPath('not-there/deeper')]);
  t.is(missing.status, 1, missing.stderr);
  t.regex(missing.stderr, /pageref serve: --flight-dir: .*ENOENT/);
  t.notRegex(missing.stderr, /attached/);
});

test('serve --flight-dir where nothing fails: /captures is [], the flight counters are 0, and SIGTERM leaves the folder empty', async (t) => {
  const log = tempPath('serve.log');
  const dir = dirname(tempPath('flight'));
  const child = spawn(process.execPath, [PAGEREF, 'serve', '--listen', '127.0.0.1:0', '--all-pfns', '--flight-dir', dir, '--log', log], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => child.kill('SIGKILL'));
  const url = await until('serve to attach', () => /serving (http:\/\/127\.0\.0\.1:\d+)\/metrics$/m.exec(readLog(log))?.[1]);
  t.regex(readLog(log), /flight recorder: 30 s or 67108864 bytes of records before a failure, 5 s after; files in .* \(0 there already\), at most 20 and 1073741824 bytes/);
  t.deepEqual(await (await fetch(`${url}/captures`)).json(), []);
  const families = parseExposition(await (await fetch(`${url}/metrics`)).text());
  t.is(families.get('pageref_flight_captures_total')?.samples[0].value, 0);
  t.is(families.get('pageref_flight_captures_deleted_total')?.samples[0].value, 0);
  child.kill('SIGTERM');
  t.is(await exited, 0);
  t.deepEqual(readdirSync(dir), []);
});
