// `pageref serve` on this machine's kernel, which has BPF but no page_ref
// tracepoints (as test/native-tracer.test.ts relies on too): it must keep
// serving the events the kernel has, say so in /metrics, answer SIGHUP and
// SIGTERM, and refuse a port that is taken. The page_ref path itself is
// test/vm/serve.test.ts, in the test kernels.

import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, renameSync } from 'node:fs';
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
