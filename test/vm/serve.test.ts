// `pageref serve` on real kernels: each test kernel boots once and runs
// test/vm/serve-guest.sh, which starts serve while vm/cma-workload.sh pins
// 16 pages with vmsplice and makes a CMA allocation fail on them, and
// fetches its endpoints with curl. At the defaults (stacks once armed) the
// pins were taken before anything was armed, so the culprit seen is the
// stack that released them; with --stacks all it is the GUP path that took
// them. go tool pprof (on the host) reads the fetched profiles, and a real
// Prometheus server in the guest scrapes serve.

import test, { ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { findKernels, KernelImage } from '../../src/vm/kernels';
import type { VmResult } from '../../src/vm/qemu';
import { parseExposition, ParsedFamily } from '../helpers/exposition';
import { guestFile, oneBootPerKernel } from './guest-runs';

// Two 300 MiB workloads under tracing: about as long as top-guest.sh's (5 to 7 minutes under TCG on a quiet host).
const TIMEOUT_SEC = 900;
/** A frame of the path that pins a page for vmsplice. */
const PIN_FRAME = /vmsplice|get_user_pages|pin_user_pages|iov_iter_get_pages|iov_iter_extract|try_grab/;
/** A frame of the path that drops a vmsplice'd page's reference: the pipe buffer's release. */
const PIPE_RELEASE_FRAME = /pipe_buf_release|pipe_release|free_pipe_info/;
const kernels = findKernels();
const guestRun = oneBootPerKernel('sh test/vm/serve-guest.sh', TIMEOUT_SEC);

interface Stacks {
  [id: string]: { kind: string; role: string; pages: number; frames: string[] };
}

function metrics(t: ExecutionContext, run: VmResult, name: string): Map<string, ParsedFamily> {
  t.is(guestFile(run, `${name}.status`), '200', `${name}: ${guestFile(run, 'curl.log')}`);
  return parseExposition(guestFile(run, name));
}

function value(families: Map<string, ParsedFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  return families.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

/** go tool pprof -top over pages, every node listed (-nodefraction=0: the busy pages are a few among thousands). */
function goPprofTop(file: string, options: string[] = []): string {
  const run = spawnSync('go', ['tool', 'pprof', '-top', '-nodefraction=0', '-sample_index=pages', ...options, file], { encoding: 'utf8', timeout: 120_000 });
  if (run.error) throw new Error(`go tool pprof: ${run.error.message} (scripts/setup.sh installs golang-go)`);
  if (run.status !== 0) throw new Error(`go tool pprof -top ${file}: ${run.stderr}`);
  return run.stdout;
}

if (process.env.PAGEREF_SKIP_VM === '1') {
  test.skip('serve VM tests skipped: PAGEREF_SKIP_VM=1', () => {});
} else if (kernels.length === 0) {
  test('serve VM tests need a test kernel', (t) => {
    t.fail('no kernel found: set PAGEREF_KERNELS or provide ../shared/vm/kernels/*/bzImage');
  });
} else {
  for (const kernel of kernels) registerServeTests(kernel);
}

function registerServeTests(kernel: KernelImage): void {
  const name = kernel.name;

  test(`${name}: serve at its defaults on 127.0.0.1:9464: /metrics counts the isolation failures, the pin's release is the culprit, pprof reads /debug/pprof/holds`, async (t) => {
    const run = await guestRun(kernel);
    t.deepEqual(run.preconditions, []);
    t.is(guestFile(run, 'defaults-workload.rc').trim(), '0', guestFile(run, 'defaults-workload.log'));
    const log = guestFile(run, 'defaults.log.1');
    t.regex(log, /pageref serve: --cma: /, 'the CMA areas by default');
    t.regex(log, /pageref serve: attached \d+ programs .*; serving http:\/\/127\.0\.0\.1:9464\/metrics$/m, log);

    // While the pins are held, after the failed allocation.
    const held = metrics(t, run, 'defaults-held.metrics');
    t.true((value(held, 'pageref_isolation_failures_total') ?? 0) > 0, guestFile(run, 'defaults-held.metrics'));
    t.true((value(held, 'pageref_cma_busy_retries_total') ?? 0) > 0);
    t.is(value(held, 'pageref_cma_failed_allocations_total'), 1, 'the workload makes one allocation, which fails');
    t.true((value(held, 'pageref_events_total', { event: 'test_pages_isolated' }) ?? 0) > 0);
    t.true((value(held, 'pageref_events_total', { event: 'page_ref_mod' }) ?? 0) > 0);
    t.is(value(held, 'pageref_page_ref_available'), 1);
    t.true((value(held, 'pageref_pfns_tracked') ?? 0) > 0, 'per-pfn totals of the CMA areas');
    t.true((value(held, 'pageref_process_cpu_seconds_total') ?? 0) > 0);
    t.is(value(held, 'pageref_dropped_total', { event: 'test_pages_isolated' }), 0);

    // After the holder released its pins on the armed pages: the release path, kind pin.
    const after = metrics(t, run, 'defaults-after.metrics');
    const culprits = after.get('pageref_culprit_pages')?.samples ?? [];
    t.true(culprits.length > 0 && culprits.length <= 10, guestFile(run, 'defaults-after.metrics'));
    const pin = culprits.find((s) => s.labels.kind === 'pin');
    t.truthy(pin, `no culprit of kind pin: ${JSON.stringify(culprits)}`);
    const stacks: Stacks = JSON.parse(guestFile(run, 'defaults-after.stacks.json'));
    const frames = stacks[pin!.labels.stack_id]?.frames ?? [];
    t.log(`${name}: defaults: culprit ${JSON.stringify(pin!.labels)} ${pin!.value} pages: ${frames.slice(0, 8).join(' < ')}`);
    t.is(pin!.labels.role, 'releaser');
    t.true(pin!.value >= 1);
    t.true(frames.some((f) => PIPE_RELEASE_FRAME.test(f)), frames.join(' < '));

    const top = goPprofTop(join(run.outDir, 'defaults-after.pb.gz'), ['-tagfocus=role=releaser']);
    t.regex(top, /^ .* (\w*pipe_buf_release|pipe_release)$/m, top);

    t.deepEqual(JSON.parse(guestFile(run, 'defaults-captures.json')), []);
    t.is(guestFile(run, 'defaults-missing.txt.status'), '404');
    t.is(guestFile(run, 'defaults-post.status'), '405');
    t.regex(guestFile(run, 'defaults.log'), /pageref serve: SIGHUP: log reopened/, 'SIGHUP opened a new log file');
    t.regex(guestFile(run, 'defaults.log'), /pageref serve: stopped by SIGTERM/);
    t.is(guestFile(run, 'defaults.rc').trim(), '0', 'SIGTERM: exit status 0');
  });

  test(`${name}: a Prometheus server on loopback scrapes serve; its HTTP API has the isolation failure counter above zero`, async (t) => {
    const run = await guestRun(kernel);
    const parse = (file: string) => {
      try {
        return JSON.parse(guestFile(run, file));
      } catch {
        return t.fail(`${file}: ${guestFile(run, file).slice(0, 500)}\n${guestFile(run, 'prometheus.log').slice(-2000)}`);
      }
    };
    const targets = parse('prometheus-targets.json');
    const target = targets?.data?.activeTargets?.find((a: { labels: { job: string } }) => a.labels.job === 'pageref');
    t.is(target?.health, 'up', JSON.stringify(targets));
    t.is(target?.lastError, '', 'Prometheus took the exposition text without an error');
    const query = parse('prometheus-query.json');
    t.is(query?.status, 'success');
    const result = query?.data?.result?.find((r: { metric: Record<string, string> }) => r.metric.job === 'pageref' && r.metric.__name__ === 'pageref_isolation_failures_total');
    t.log(`${name}: Prometheus: ${JSON.stringify(result)}`);
    t.true(Number(result?.value?.[1]) > 0, JSON.stringify(query));
  });

  test(`${name}: serve --stacks all: the vmsplice GUP path holds the busy pages (kind pin), and go tool pprof -top lists its frames`, async (t) => {
    const run = await guestRun(kernel);
    t.is(guestFile(run, 'stacks-all-workload.rc').trim(), '0', guestFile(run, 'stacks-all-workload.log'));
    const held = metrics(t, run, 'stacks-all-held.metrics');
    t.true((value(held, 'pageref_isolation_failures_total') ?? 0) > 0, guestFile(run, 'stacks-all-held.metrics'));
    const pin = held.get('pageref_culprit_pages')?.samples.find((s) => s.labels.kind === 'pin' && s.labels.role === 'holder');
    t.truthy(pin, guestFile(run, 'stacks-all-held.metrics'));
    const stacks: Stacks = JSON.parse(guestFile(run, 'stacks-all-held.stacks.json'));
    const frames = stacks[pin!.labels.stack_id]?.frames ?? [];
    t.log(`${name}: --stacks all: culprit ${JSON.stringify(pin!.labels)} ${pin!.value} pages: ${frames.slice(0, 8).join(' < ')}`);
    t.true(frames.some((f) => PIN_FRAME.test(f)), frames.join(' < '));
    const top = goPprofTop(join(run.outDir, 'stacks-all-held.pb.gz'), ['-tagfocus=held_at=failure']);
    t.regex(top, new RegExp(`^ .* \\w*(${PIN_FRAME.source})\\w*$`, 'm'), top);
    t.is(guestFile(run, 'stacks-all.rc').trim(), '0', guestFile(run, 'stacks-all.log'));
    t.notRegex(guestFile(run, 'bpf-progs-after.txt'), /tracepoint|tracing/, 'a BPF program is still loaded after serve exited');
    t.not(guestFile(run, 'after-exit.status'), '200', 'something still answers on 9464 after serve exited');
  });
}
