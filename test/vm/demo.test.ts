// `pageref demo`, what `npm start` runs on a machine whose kernel lacks the
// page_ref tracepoints: it boots a test kernel itself, makes a CMA
// allocation fail on pages pinned with vmsplice, and prints the report and
// the blame. On each test kernel, the blame must name the pin.

import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PAGEREF } from '../helpers/cli';
import { forEachKernel } from './guest-runs';

function demo(kernel: string, keep: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PAGEREF, 'demo', '--kernel', kernel, '--keep', keep], { timeout: 900_000, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

forEachKernel('demo', (kernel) => {
  test.serial(`${kernel.name}: pageref demo reports the failed CMA allocation and blames the vmsplice pin`, async (t) => {
    const keep = mkdtempSync(join(tmpdir(), 'pageref-demo-test-'));
    const run = await demo(kernel.name, keep);
    t.is(run.status, 0, run.stderr.slice(-3000));
    t.true(existsSync(join(keep, 'demo.pgref')), 'the capture is kept');
    t.regex(run.stdout, /pageref blame: kernel \S+: (\d+) failed isolation tests/);
    const culprit = /^Culprit 1: (\S+) held (\d+) busy pages? through (\d+) failures\n {2}kind: (\w+).*\n {2}taken by: ([^;\s]+)/m.exec(run.stdout);
    t.truthy(culprit, run.stdout.slice(-3000));
    t.log(`${kernel.name}: ${culprit?.[0].split('\n')[0]}`);
    t.is(culprit?.[4], 'pin');
    t.is(culprit?.[5], 'vmsplice-hold');
    t.regex(run.stdout, /__do_sys_vmsplice/, 'the pin\'s stack reaches vmsplice');
  });
});
