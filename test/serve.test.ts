// `pageref serve` without a kernel: the metrics text, the culprit ranking
// and the HTTP layer, fed records built here. The kernel path (a real
// tracer, a real isolation failure) is test/vm/serve.test.ts.

import test from 'ava';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { EventType } from '../src/record/event-types';
import { RecordDecoder } from '../src/record/record-decoder';
import { StringTable } from '../src/record/string-table';
import { stackIdOf } from '../src/serve/culprits';
import { DEFAULT_LISTEN, parseListen, startServer } from '../src/serve/http-server';
import { escapeLabelValue, MetricFamily } from '../src/serve/metric-family';
import { renderExposition } from '../src/serve/prometheus-text';
import { ServeSource, ServeState } from '../src/serve/serve-state';
import { DEFAULT_MAX_PFNS } from '../src/holds/pfn-counters';
import { counters, testHeader } from './helpers/capture';
import { pageref } from './helpers/cli';
import { parseExposition } from './helpers/exposition';
import { rawRecord } from './helpers/records';

const HOLDERS = 12;
const pinFrames = (i: number) => ['__page_ref_mod_unless+0x10', 'try_grab_folio+0x40', `holder_path_${i}+0x1c`, 'iov_iter_get_pages2+0x20', 'vmsplice_to_pipe+0x88'];

/**
 * A session fed HOLDERS pin stacks; stack i holds i + 1 pages, and isolation
 * fails once on each of those pages. Also a put from the exit path on a
 * page with no failure, and seen/dropped counters.
 */
/** What /metrics serves in the 0.0.4 text. */
const exposition = (state: ServeState) => renderExposition(state.metricFamilies());

function servedState(maxCulprits = 10, clock = { nowNs: 2_000_000_000 }, culpritWindowSec = 3600, maxPfns = DEFAULT_MAX_PFNS): ServeState {
  const state = new ServeState({ pageRefAvailable: true, maxCulprits, maxPfns, culpritWindowSec, clockNs: () => clock.nowNs });
  state.header({ ...testHeader(), eventsAttached: ['page_ref_mod', 'page_ref_mod_unless', 'test_pages_isolated', 'cma_alloc_busy_retry', 'cma_alloc_finish'] });
  state.stacks([...Array(HOLDERS).keys()].map((i) => ({ id: 10 + i, frames: pinFrames(i) })));
  state.stacks([{ id: 99, frames: ['__page_ref_mod_and_test+0x10', 'release_pages+0x1a4', 'exit_mmap+0x120'] }]);
  const records: Buffer[] = [];
  let ts = 2_000_000_000n;
  let pfn = 0x30000;
  const pinned: number[] = [];
  for (let i = 0; i < HOLDERS; i++) {
    for (let page = 0; page <= i; page++, pfn++) {
      records.push(rawRecord({ type: EventType.PageRefModUnless, tsNs: (ts += 1000n), pfn: BigInt(pfn), val: 1, ret: 1, count: 2, pid: 100 + i, tgid: 100 + i, comm: 'vmsplice-hold', stackId: 10 + i }));
      pinned.push(pfn);
    }
  }
  records.push(rawRecord({ type: EventType.PageRefModAndTest, tsNs: (ts += 1000n), pfn: 0x50000n, val: -1, ret: 0, count: 1, pid: 7, tgid: 7, comm: 'bash', stackId: 99 }));
  for (const p of pinned) {
    records.push(rawRecord({ type: EventType.TestPagesIsolated, tsNs: (ts += 1000n), pfn: BigInt(p), word1: BigInt(p + 1), word2: BigInt(p), pid: 300, tgid: 300 }));
    records.push(rawRecord({ type: EventType.CmaAllocBusyRetry, tsNs: (ts += 1000n), pid: 300, tgid: 300, comm: 'cma-alloc' }));
  }
  const strings = new StringTable();
  const bytes = Buffer.concat(records);
  state.events(new RecordDecoder(strings, null, 1_000_000_000n).decode(bytes, bytes.length), strings);
  const seen = new Array<number>(12).fill(0);
  seen[EventType.PageRefModUnless] = 5000;
  seen[EventType.TestPagesIsolated] = pinned.length;
  const dropped = new Array<number>(12).fill(0);
  dropped[EventType.PageRefModUnless] = 3;
  const at = (type: number, n: number) => {
    const values = new Array<number>(12).fill(0);
    values[type] = n;
    return values;
  };
  state.counters(counters({ seen, dropped, stackLost: at(EventType.PageRefModUnless, 4), sampledOut: at(EventType.PageRefModUnless, 900), aggregateOverflow: at(EventType.PageRefModUnless, 6) }));
  return state;
}

test('metrics: valid exposition text, HELP and TYPE for each family, counters named _total, the counts of the stream', (t) => {
  const families = parseExposition(exposition(servedState()));
  for (const [name, family] of families) {
    t.true(family.help.length > 10, `${name} has a help text`);
    t.is(name.endsWith('_total'), family.type === 'counter', `${name}: counters and only counters end in _total`);
    t.true(name.startsWith('pageref_'), name);
  }
  const value = (name: string, labels: Record<string, string> = {}) =>
    families.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  const pinnedPages = (HOLDERS * (HOLDERS + 1)) / 2;
  t.is(value('pageref_isolation_failures_total'), pinnedPages);
  t.is(value('pageref_cma_busy_retries_total'), pinnedPages);
  t.is(value('pageref_cma_failed_allocations_total'), 0);
  t.is(value('pageref_events_total', { event: 'page_ref_mod_unless' }), 5000);
  t.is(value('pageref_events_total', { event: 'test_pages_isolated' }), pinnedPages);
  t.is(value('pageref_dropped_total', { event: 'page_ref_mod_unless' }), 3);
  t.is(value('pageref_stacks_lost_total', { event: 'page_ref_mod_unless' }), 4);
  t.is(value('pageref_sampled_out_total', { event: 'page_ref_mod_unless' }), 900);
  t.is(value('pageref_aggregate_overflow_total', { event: 'page_ref_mod_unless' }), 6);
  t.is(value('pageref_stacks_lost_total', { event: 'test_pages_isolated' }), 0, 'a series for every attached event, 0 too');
  t.is(value('pageref_evicted_pfns_total'), 0, 'the default --max-pfns holds every page');
  t.deepEqual(families.get('pageref_events_total')?.samples.map((s) => s.labels.event), ['page_ref_mod', 'page_ref_mod_unless', 'test_pages_isolated', 'cma_alloc_busy_retry', 'cma_alloc_finish'], 'one series per attached event');
  t.is(value('pageref_pfns_tracked'), pinnedPages + 1);
  t.is(value('pageref_page_ref_available'), 1);
  t.true((value('pageref_process_cpu_seconds_total') ?? 0) > 0);
});

test('--max-pfns bounds serve\'s hold table: the pages it evicts are counted on /metrics', (t) => {
  // 79 pages have page_ref events; a table of 10 must forget at least 69.
  const families = parseExposition(exposition(servedState(10, undefined, 3600, 10)));
  const evicted = families.get('pageref_evicted_pfns_total');
  t.is(evicted?.type, 'counter');
  t.true((evicted?.samples[0].value ?? 0) >= 69, `${evicted?.samples[0].value} evicted`);
});

test('metrics: culprit series are bounded, the stacks with the most busy pages, labelled by a hash of their frames', (t) => {
  const culprits = parseExposition(exposition(servedState(10))).get('pageref_culprit_pages');
  t.is(culprits?.type, 'gauge');
  t.is(culprits?.samples.length, 10, `${HOLDERS} culprit stacks, 10 series`);
  t.deepEqual(
    culprits?.samples.map((s) => s.value),
    [12, 11, 10, 9, 8, 7, 6, 5, 4, 3],
  );
  t.deepEqual(culprits?.samples[0].labels, { stack_id: stackIdOf(pinFrames(11)), kind: 'pin', role: 'holder' });
  t.regex(culprits?.samples[0].labels.stack_id ?? '', /^[0-9a-f]{12}$/);
  t.is(parseExposition(exposition(servedState(3))).get('pageref_culprit_pages')?.samples.length, 3, '--culprits 3');
});

test('the culprits are those of the window: failures older than --culprit-window are forgotten, the totals stay', (t) => {
  // servedState's failures, as offsets from the capture's base (1 s), are at
  // 1 s + 80 us + 2 us * k for k = 0 .. 77, one per pinned page.
  const clock = { nowNs: 2_000_000_000 };
  const state = servedState(10, clock, 1);
  const gauge = (name: string) => parseExposition(exposition(state)).get(name)?.samples[0]?.value;
  t.is(gauge('pageref_busy_pfns'), 78);
  t.is(gauge('pageref_busy_pfns_forgotten_total'), 0);
  // 1 s after the 40th failure: k = 0 .. 39 are out of the window.
  clock.nowNs = 1_000_000_000 + 1_000_080_000 + 2_000 * 39 + 1;
  t.is(gauge('pageref_busy_pfns'), 38);
  t.is(gauge('pageref_busy_pfns_forgotten_total'), 40);
  t.is(gauge('pageref_isolation_failures_total'), 78, 'the failure total keeps counting');
  // Stack i (i + 1 pinned pages, failing in order) keeps the pages failed on after k = 39.
  const pages = new Map(Object.values(state.culpritStacks()).map((c) => [c.frames[2], c.pages]));
  t.is(pages.get('holder_path_11+0x1c'), 12);
  t.is(pages.get('holder_path_8+0x1c'), 5, 'pages 40 .. 44 of 36 .. 44');
  t.false(pages.has('holder_path_7+0x1c'));
  clock.nowNs += 3_600_000_000_000;
  t.is(gauge('pageref_busy_pfns'), 0);
  t.deepEqual(state.culpritStacks(), {});
  t.is(parseExposition(exposition(state)).get('pageref_culprit_pages')?.samples.length, 0);
});

test('stack ids depend on the frames only: the same code path keeps its id across sessions', (t) => {
  t.is(stackIdOf(pinFrames(1)), stackIdOf([...pinFrames(1)]));
  t.not(stackIdOf(pinFrames(1)), stackIdOf(pinFrames(2)));
  // a new session (another kernel stack id for the same frames) names it the same way
  const a = servedState().culpritStacks();
  t.deepEqual(a[stackIdOf(pinFrames(4))], { kind: 'pin', role: 'holder', pages: 5, frames: pinFrames(4) });
});

test('exposition: label values escape backslash, quote and newline, and read back unchanged', (t) => {
  const awkward = 'a\\b"c\nd';
  t.is(escapeLabelValue(awkward), 'a\\\\b\\"c\\nd');
  const text = renderExposition([{ name: 'x_total', help: 'line one\nline two \\ end', type: 'counter', samples: [{ labels: { v: awkward, w: '' }, value: 2 }] }]);
  const family = parseExposition(text).get('x_total');
  t.deepEqual(family?.samples, [{ labels: { v: awkward, w: '' }, value: 2 }]);
  t.is(family?.help, 'line one\nline two \\ end');
  t.throws(() => renderExposition([{ name: 'bad-name', help: 'h', type: 'gauge', samples: [] }]));
});

function get(address: AddressInfo, path: string, method = 'GET'): Promise<{ status: number; type: string; body: Buffer; allow?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address.address, port: address.port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks), allow: res.headers.allow }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('HTTP: each endpoint of a fake state source, 404 for other paths, 405 for other methods', async (t) => {
  const families: MetricFamily[] = [{ name: 'm_total', help: 'h', type: 'counter', samples: [{ value: 1 }] }];
  const source: ServeSource = {
    metricFamilies: () => families,
    culpritStacks: () => ({ abcdef012345: { kind: 'pin', role: 'holder', pages: 2, frames: ['f1', 'f2'] } }),
    holdsProfile: () => Uint8Array.from([1, 2, 3]),
    captures: () => [],
  };
  const { server, address } = await startServer(source, '127.0.0.1', 0);
  t.teardown(() => server.close());
  t.is(address.address, '127.0.0.1');
  const metrics = await get(address, '/metrics');
  t.is(metrics.status, 200);
  t.is(metrics.type, 'text/plain; version=0.0.4; charset=utf-8');
  t.is(metrics.body.toString(), '# HELP m_total h\n# TYPE m_total counter\nm_total 1\n');
  const stacks = await get(address, '/stacks');
  t.is(stacks.type, 'application/json');
  t.deepEqual(JSON.parse(stacks.body.toString()), source.culpritStacks());
  t.deepEqual(JSON.parse((await get(address, '/stacks/abcdef012345')).body.toString()).frames, ['f1', 'f2']);
  t.is((await get(address, '/stacks/000000000000')).status, 404);
  t.deepEqual([...(await get(address, '/debug/pprof/holds?seconds=30')).body], [1, 2, 3]);
  t.deepEqual(JSON.parse((await get(address, '/captures')).body.toString()), []);
  t.is((await get(address, '/')).status, 404);
  t.is((await get(address, '/metricsx')).status, 404);
  const post = await get(address, '/metrics', 'POST');
  t.is(post.status, 405);
  t.is(post.allow, 'GET');
  t.is((await get(address, '/metrics', 'DELETE')).status, 405);
});

test('HTTP: /debug/pprof/holds of a session is a gzipped pprof profile with the holders\' frames', async (t) => {
  const state = servedState();
  const { server, address } = await startServer(state, '127.0.0.1', 0);
  t.teardown(() => server.close());
  for (let i = 0; i < 2; i++) {
    // twice: the profile is built afresh each time, not consumed
    const profile = Profile.decode(gunzipSync((await get(address, '/debug/pprof/holds')).body));
    const strings = profile.stringTable.strings;
    t.true(strings.includes('vmsplice_to_pipe'), 'a frame of the pin path');
    const failure = profile.sample.filter((s) => s.label.some((l) => strings[Number(l.key)] === 'held_at' && strings[Number(l.str)] === 'failure'));
    t.is(failure.length, HOLDERS, 'one failure sample per holding stack');
  }
});

test('the default address is loopback, port 9464; --listen takes HOST:PORT and [IPv6]:PORT', (t) => {
  t.deepEqual(DEFAULT_LISTEN, { host: '127.0.0.1', port: 9464 });
  t.deepEqual(parseListen('0.0.0.0:80'), { host: '0.0.0.0', port: 80 });
  t.deepEqual(parseListen('[::1]:9464'), { host: '::1', port: 9464 });
  t.deepEqual(parseListen('localhost:9'), { host: 'localhost', port: 9 });
  t.is(parseListen('9464'), null);
  t.is(parseListen('127.0.0.1:65536'), null);
  t.regex(pageref(['serve', '--help']).stdout, /--listen <host:port> +address to serve HTTP on \(default: 127\.0\.0\.1:9464\)/);
});

test('serve: bad options are one line and exit status 2, before the kernel is touched', (t) => {
  for (const [args, message] of [
    [['--listen', 'nowhere'], /^pageref: --listen: "nowhere" is not HOST:PORT/],
    [['--culprits', '0'], /^pageref: --culprits: "0"/],
    [['--culprit-window', '0'], /^pageref: --culprit-window: "0" is not a positive number of seconds/],
    [['--culprit-window', '1h'], /^pageref: --culprit-window: "1h"/],
    [['--all-pfns', '--cma'], /^pageref: --all-pfns and --cma contradict each other\n$/],
    [['--stacks', 'bogus'], /^pageref: /],
  ] as const) {
    const run = pageref(['serve', ...args]);
    t.is(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
    t.regex(run.stderr, message);
    t.is(run.stderr.trim().split('\n').length, 1, run.stderr);
  }
});

test('serve: a --log that cannot be opened is one line and exit status 1', (t) => {
  const run = pageref(['serve', '--log', '/nonexistent-pageref-dir/serve.log']);
  t.is(run.status, 1, run.stderr);
  t.regex(run.stderr, /^pageref serve: --log \/nonexistent-pageref-dir\/serve\.log: ENOENT/);
  t.is(run.stderr.trim().split('\n').length, 1, run.stderr);
});
