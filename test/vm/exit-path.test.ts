// The case of the commit that added the page_ref tracepoints (95813b8f): a
// CMA allocation fails isolation at a page that an exiting process still
// holds in its exit_mmap() batch (release_pages <- free_pages_and_swap_cache
// <- tlb_flush_mmu/tlb_finish_mmu <- exit_mmap <- mmput <- do_exit). Each
// test kernel boots once and runs test/vm/exit-path-guest.sh, which retries
// vm/exit-race-workload.sh (a bounded number of times) under `pageref
// record` until an isolation fails; here `pageref blame --json` must name
// the exit path as the releaser of a busy pfn that the exiting process held.
// It fails, never passes, when the race never happened.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { forEachKernel } from './guest-runs';
import { KernelImage, repoRoot } from '../../src/vm/kernels';
import { runInVm, VmResult } from '../../src/vm/qemu';
import { Blame, BusyPfn, COMM, EXIT_FRAMES, exitPathPfns } from './exit-path-criterion';

const TIMEOUT_SEC = 420;

let previous: Promise<unknown> = Promise.resolve();

function blame(capture: string): Blame {
  const text = execFileSync(process.execPath, [join(repoRoot(), 'bin', 'pageref.js'), 'blame', capture, '--json'], { maxBuffer: 1 << 30 });
  return JSON.parse(text.toString()) as Blame;
}

forEachKernel('exit-path', registerExitPathTest);

function registerExitPathTest(kernel: KernelImage): void {
  test(`${kernel.name}: blame names the exit path (exit_mmap batch) as releaser of a page an exiting process held during a CMA allocation`, async (t) => {
    // One guest at a time: two emulated guests on two cores slow each other and widen no race.
    const run: Promise<VmResult> = previous
      .catch(() => undefined)
      .then(() => runInVm({ kernel, script: 'sh test/vm/exit-path-guest.sh', timeoutSec: TIMEOUT_SEC }));
    previous = run;
    const vm = await run;
    t.log(`${kernel.name}: guest took ${vm.seconds.toFixed(0)} s`);
    t.deepEqual(vm.preconditions, [], 'the guest lacked what the test needs');
    t.is(vm.exitCode, 0, vm.log);
    const tries = readFileSync(join(vm.outDir, 'tries.txt'), 'utf8').trim().split('\n');
    for (const line of tries) t.log(`${kernel.name}: ${line}`);

    const found: { capture: string; pfn: BusyPfn }[] = [];
    for (let n = 1; n <= tries.length; n++) {
      const capture = join(vm.outDir, `try${n}.pgref`);
      if (!existsSync(capture)) continue;
      const b = blame(capture);
      const hits = exitPathPfns(b);
      t.log(`try${n}: ${b.failures} isolation failures, ${b.busyPfns.length} busy pfns, ${hits.length} released by the exit path, ${b.dropped} dropped`);
      for (const pfn of hits) found.push({ capture, pfn });
    }
    t.true(found.length > 0, `in ${tries.length} tries no busy pfn was held by ${COMM} and released by its exit_mmap batch`);
    const { pfn } = found[0];
    const releaser = pfn.releasers.find((r) => r.comm === COMM && r.stack.some((f) => EXIT_FRAMES.test(f)))!;
    t.log(`${pfn.pfn}: ${pfn.failures} failures; released by ${releaser.stack.join(' < ')}`);
    t.true(releaser.stack.some((f) => /^do_exit\+/.test(f)), 'the releasing put is not under do_exit');
    t.true(releaser.stack.some((f) => /^exit_mmap\+/.test(f)), 'the releasing put is not under exit_mmap');
    t.true(pfn.failures > 0);
  });
}
