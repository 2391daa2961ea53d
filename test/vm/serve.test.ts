// `pageref serve` on real kernels: each test kernel boots once and runs
// test/vm/serve-guest.sh, which starts serve while vm/cma-workload.sh pins
// 16 pages with vmsplice and makes a CMA allocation fail on them, and
// fetches its endpoints with curl. At the defaults (stacks once armed) the
// pins were taken before anything was armed, so the culprit seen is the
// stack that released them; with --stacks all it is the GUP path that took
// them. go tool pprof (on the host) reads the fetched profiles, and a real
// Prometheus server in the guest scrapes serve. The --stacks all run has the
// flight recorder on: its capture of the failures is read here by `pageref
// blame`; a first run, whose CMA allocation succeeds, must write nothing.

import test, { ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { KernelImage } from '../../src/vm/kernels';
import type { VmResult } from '../../src/vm/qemu';
import { pageref } from '../helpers/cli';
import { parseExposition, ParsedFamily } from '../helpers/exposition';
import { forEachKernel, guestFile, oneBootPerKernel } from './guest-runs';

// Two 300 MiB workloads under tracing: about as long as top-guest.sh's (5 to 7 minutes under TCG on a quiet host).
const TIMEOUT_SEC = 900;
/** A frame of the path that pins a page for vmsplice. */
const PIN_FRAME = /vmsplice|get_user_pages|pin_user_pages|iov_iter_get_pages|iov_iter_extract|try_grab/;
/** A frame only vmsplice's pinning has, of the paths that PIN_FRAME matches. */
const VMSPLICE_FRAME = /vmsplice|iov_iter_get_pages|iov_iter_extract/;
/** A frame of the path that drops a vmsplice'd page's reference: the pipe buffer's release. */
const PIPE_RELEASE_FRAME = /pipe_buf_release|pipe_release|free_pipe_info/;
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

forEachKernel('serve', registerServeTests);

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
    const stacks: Stacks = JSON.parse(guestFile(run, 'defaults-after.stacks.json'));
    const framesOf = (s: (typeof culprits)[number]) => stacks[s.labels.stack_id]?.frames ?? [];
    const pins = culprits.filter((s) => s.labels.kind === 'pin');
    for (const s of pins) t.log(`${name}: defaults: culprit ${JSON.stringify(s.labels)} ${s.value} pages: ${framesOf(s).slice(0, 8).join(' < ')}`);
    // Among them, not necessarily alone: a page nobody pinned can be busy for
    // a moment too, with a holder of its own (pinned-failures.ts). A CI run on
    // 6.12 once showed an LRU batch's reference, taken in a long-term pin's
    // fault-in, beside the pipe's release.
    const release = pins.find((s) => s.labels.role === 'releaser' && framesOf(s).some((f) => PIPE_RELEASE_FRAME.test(f)));
    t.truthy(release, `no culprit of kind pin is the pipe's release: ${JSON.stringify(culprits)}`);
    t.true((release?.value ?? 0) >= 1);

    const top = goPprofTop(join(run.outDir, 'defaults-after.pb.gz'), ['-tagfocus=role=releaser']);
    t.regex(top, /^ .* (\w*pipe_buf_release|pipe_release)$/m, top);

    t.deepEqual(JSON.parse(guestFile(run, 'defaults-captures.json')), [], 'no flight recorder without --flight-dir');
    t.is(value(after, 'pageref_flight_captures_total'), undefined);
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
    const stacks: Stacks = JSON.parse(guestFile(run, 'stacks-all-held.stacks.json'));
    // vmsplice's, among the holders of kind pin (a page busy for a moment may have another: see above).
    const pin = held
      .get('pageref_culprit_pages')
      ?.samples.find((s) => s.labels.kind === 'pin' && s.labels.role === 'holder' && (stacks[s.labels.stack_id]?.frames ?? []).some((f) => VMSPLICE_FRAME.test(f)));
    t.truthy(pin, guestFile(run, 'stacks-all-held.metrics'));
    const frames = stacks[pin!.labels.stack_id]?.frames ?? [];
    t.log(`${name}: --stacks all: culprit ${JSON.stringify(pin!.labels)} ${pin!.value} pages: ${frames.slice(0, 8).join(' < ')}`);
    t.true(frames.some((f) => PIN_FRAME.test(f)), frames.join(' < '));
    const top = goPprofTop(join(run.outDir, 'stacks-all-held.pb.gz'), ['-tagfocus=held_at=failure']);
    t.regex(top, new RegExp(`^ .* \\w*(${PIN_FRAME.source})\\w*$`, 'm'), top);
    t.is(guestFile(run, 'stacks-all.rc').trim(), '0', guestFile(run, 'stacks-all.log'));
    t.notRegex(guestFile(run, 'bpf-progs-after.txt'), /tracepoint|tracing/, 'a BPF program is still loaded after serve exited');
    t.not(guestFile(run, 'after-exit.status'), '200', 'something still answers on 9464 after serve exited');
  });

  test(`${name}: serve --flight-dir where nothing fails: a CMA allocation that succeeds is traced, and no file is written`, async (t) => {
    const run = await guestRun(kernel);
    t.is(guestFile(run, 'quiet-alloc.txt').trim(), 'succeeded', guestFile(run, 'quiet-guest.log'));
    const quiet = metrics(t, run, 'quiet.metrics');
    t.true((value(quiet, 'pageref_events_total', { event: 'test_pages_isolated' }) ?? 0) > 0, 'the allocation\'s isolation tests were seen');
    t.true((value(quiet, 'pageref_events_total', { event: 'cma_alloc_finish' }) ?? 0) > 0);
    t.is(value(quiet, 'pageref_isolation_failures_total'), 0);
    t.is(value(quiet, 'pageref_cma_busy_retries_total'), 0);
    t.is(value(quiet, 'pageref_flight_captures_total'), 0);
    t.deepEqual(JSON.parse(guestFile(run, 'quiet-captures.json')), []);
    t.is(guestFile(run, 'quiet.rc').trim(), '0', guestFile(run, 'quiet.log'));
    t.is(guestFile(run, 'flight-quiet.ls'), '', 'nothing in --flight-dir');
  });

  test(`${name}: serve --flight-dir: a capture for each window of failures, /captures lists it, --flight-max-files 1 keeps the newest, and pageref blame on it names the vmsplice pin as the holder`, async (t) => {
    const run = await guestRun(kernel);
    const guestLog = guestFile(run, 'stacks-all-guest.log');
    const first = guestFile(run, 'flight-first.ls').split('\n').filter((f) => f !== '');
    t.is(first.length, 1, `the first allocation's 33 failures come within a second: one window, one file: ${first.join(' ')} ${guestLog}`);
    t.regex(guestFile(run, 'stacks-all-workload.log'), /allocation failed again/, 'the second allocation failed on the same pins');
    const files = guestFile(run, 'flight.ls').split('\n').filter((f) => f !== '');
    t.is(files.length, 1, `--flight-max-files 1: ${files.join(' ')}`);
    t.regex(files[0] ?? '', /^pageref-flight-\d{8}T\d{6}\.\d{3}Z\.capture$/);
    t.true(files[0] !== undefined && files[0] > first[0], `the second window's file (${files[0]}) replaced the first (${first[0]})`);
    const after = metrics(t, run, 'stacks-all-after.metrics');
    const failures = (value(after, 'pageref_isolation_failures_total') ?? 0) + (value(after, 'pageref_cma_busy_retries_total') ?? 0);
    t.true(failures > 0);
    t.is(value(after, 'pageref_flight_captures_total'), 2, guestLog);
    t.is(value(after, 'pageref_flight_captures_deleted_total'), 1, 'the oldest file went');
    const listing = JSON.parse(guestFile(run, 'stacks-all-captures.json'));
    t.is(listing.length, 1, JSON.stringify(listing));
    t.is(listing[0]?.name, files[0]);
    t.true(listing[0]?.failures > 0 && listing[0]?.failures < failures, `the second window holds the second allocation's failures only: ${listing[0]?.failures} of ${failures}`);
    const log = guestFile(run, 'stacks-all.log.1');
    const written = [...log.matchAll(/^(\S+) pageref serve: flight recorder: wrote .*(pageref-flight-\S+\.capture) \(\d+ bytes, \d+ failures; the window ended\)$/gm)];
    t.deepEqual(written.map((w) => w[2]), [first[0], files[0]], log);
    t.regex(log, new RegExp(`deleted .*${first[0]?.replace(/\./g, '\\.')}`), 'the log says which file went');
    // Named by the wall-clock time of the first failure: seconds (--flight-after 3, under TCG) before the file was written.
    const stamp = /^pageref-flight-(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d\.\d{3})Z/.exec(files[0] ?? '');
    const named = stamp ? Date.parse(`${stamp[1]}-${stamp[2]}-${stamp[3]}T${stamp[4]}:${stamp[5]}:${stamp[6]}Z`) : NaN;
    const lag = (Date.parse(written[1]?.[1] ?? '') - named) / 1000;
    t.true(lag >= 3 && lag < 60, `file named ${files[0]}, written at ${written[1]?.[1]}: ${lag} s later`);

    const blame = pageref(['blame', '--json', join(run.outDir, 'flight', files[0] ?? 'none')]);
    t.is(blame.status, 0, blame.stderr);
    const verdict = JSON.parse(blame.stdout);
    t.is(verdict.truncated, null, 'the file is finished: it has its trailer');
    t.true(verdict.failures > 0);
    const holder = verdict.byStack.find((g: { role: string; kind: string; comms: string[] }) => g.role === 'holder' && g.kind === 'pin' && g.comms.includes('vmsplice-hold'));
    t.truthy(holder, JSON.stringify(verdict.byStack.map((g: { role: string; kind: string; frame: string }) => [g.role, g.kind, g.frame])));
    t.log(`${name}: flight capture ${files[0]}: ${verdict.failures} failures; holder ${holder?.kind} ${holder?.pages} pages ${holder?.comms}: ${(holder?.stack ?? []).slice(0, 8).join(' < ')}`);
    t.deepEqual(holder?.comms, ['vmsplice-hold']);
    t.true((holder?.stack ?? []).some((f: string) => PIN_FRAME.test(f)), (holder?.stack ?? []).join(' < '));
  });
}
