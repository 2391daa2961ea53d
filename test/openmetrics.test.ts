// /metrics in OpenMetrics 1.0.0: the rendering of the family model, the
// Accept header negotiation, and both formats through the HTTP server.

import test from 'ava';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServer } from '../src/serve/http-server';
import type { MetricFamily } from '../src/serve/metric-family';
import { prefersOpenMetrics } from '../src/serve/metrics-negotiation';
import { renderOpenMetrics } from '../src/serve/openmetrics-text';
import { renderExposition } from '../src/serve/prometheus-text';
import { metricFamilies, ServeSnapshot } from '../src/serve/serve-metrics';
import type { ServeSource } from '../src/serve/serve-state';

/** What Prometheus 2.42 sends when it scrapes. */
const PROMETHEUS_ACCEPT = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
const OPENMETRICS_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';
const PROMETHEUS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const families: MetricFamily[] = [
  { name: 'app_requests_total', type: 'counter', help: 'Requests "served"\nby path \\ method.', samples: [{ labels: { path: 'a\\b"c\nd', method: '' }, value: 3 }, { labels: { path: '/', method: 'GET' }, value: 1e21 }] },
  { name: 'app_cpu_seconds_total', type: 'counter', unit: 'seconds', help: 'CPU time.', samples: [{ value: 0.25 }] },
  { name: 'app_temperature', type: 'gauge', help: 'Now.', samples: [{ value: NaN }, { labels: { probe: 'hot' }, value: Infinity }, { labels: { probe: 'cold' }, value: -Infinity }] },
  { name: 'app_empty', type: 'gauge', help: 'No series.', samples: [] },
];

test('OpenMetrics: counter families without _total, samples with it; TYPE, UNIT, HELP; escapes; numbers; # EOF last', (t) => {
  t.is(
    renderOpenMetrics(families),
    [
      '# TYPE app_requests counter',
      '# HELP app_requests Requests \\"served\\"\\nby path \\\\ method.',
      'app_requests_total{path="a\\\\b\\"c\\nd",method=""} 3',
      'app_requests_total{path="/",method="GET"} 1e+21',
      '# TYPE app_cpu_seconds counter',
      '# UNIT app_cpu_seconds seconds',
      '# HELP app_cpu_seconds CPU time.',
      'app_cpu_seconds_total 0.25',
      '# TYPE app_temperature gauge',
      '# HELP app_temperature Now.',
      'app_temperature NaN',
      'app_temperature{probe="hot"} +Inf',
      'app_temperature{probe="cold"} -Inf',
      '# TYPE app_empty gauge',
      '# HELP app_empty No series.',
      '# EOF',
      '',
    ].join('\n'),
  );
  t.is(renderOpenMetrics([]), '# EOF\n', 'an empty set is still a complete exposition');
});

test('OpenMetrics: what the format refuses throws instead of being served', (t) => {
  t.throws(() => renderOpenMetrics([{ name: 'app_requests', type: 'counter', help: 'h', samples: [] }]), { message: /does not end in _total/ });
  t.throws(() => renderOpenMetrics([{ name: 'app_cpu_total', type: 'counter', unit: 'seconds', help: 'h', samples: [] }]), { message: /does not end in its unit/ });
  t.throws(() => renderOpenMetrics([{ name: 'app_total', type: 'counter', help: 'h', samples: [{ value: NaN }] }]), { message: /NaN/ });
  t.throws(() => renderOpenMetrics([{ name: 'bad-name', type: 'gauge', help: 'h', samples: [] }]), { message: /not valid/ });
});

test('0.0.4 text is unchanged: counters keep _total in HELP and TYPE, no UNIT, no quote escape in HELP, no EOF', (t) => {
  const text = renderExposition(families.slice(0, 2));
  t.is(
    text,
    [
      '# HELP app_requests_total Requests "served"\\nby path \\\\ method.',
      '# TYPE app_requests_total counter',
      'app_requests_total{path="a\\\\b\\"c\\nd",method=""} 3',
      'app_requests_total{path="/",method="GET"} 1e+21',
      '# HELP app_cpu_seconds_total CPU time.',
      '# TYPE app_cpu_seconds_total counter',
      'app_cpu_seconds_total 0.25',
      '',
    ].join('\n'),
  );
});

test('OpenMetrics of serve\'s own families: every counter family named without _total, the CPU time with its unit', (t) => {
  const snapshot: ServeSnapshot = { eventsAttached: ['test_pages_isolated'], counters: undefined, isolationFailures: 2, cmaBusyRetries: 0, cmaFailedAllocations: 0, pfnsTracked: 5, evictedPfns: 0, cpuSeconds: 1.5, pageRefAvailable: false, busyPfns: 0, busyPfnsForgotten: 0, culpritWindowSec: 3600, culprits: [], flight: { captures: 1, deleted: 0 } };
  const lines = renderOpenMetrics(metricFamilies(snapshot, 10)).split('\n');
  t.deepEqual(lines.slice(-2), ['# EOF', '']);
  const types = lines.filter((line) => line.startsWith('# TYPE '));
  t.true(types.length >= 9);
  for (const line of types) t.notRegex(line, /_total /, line);
  t.true(lines.includes('# TYPE pageref_isolation_failures counter'));
  t.true(lines.includes('pageref_isolation_failures_total 2'));
  t.true(lines.includes('# TYPE pageref_pfns_tracked gauge'));
  t.true(lines.includes('pageref_pfns_tracked 5'));
  t.deepEqual(lines.filter((line) => line.startsWith('# UNIT ')), ['# UNIT pageref_process_cpu_seconds seconds']);
  t.true(lines.includes('pageref_process_cpu_seconds_total 1.5'));
});

test('negotiation: OpenMetrics when the scraper names it with q above 0, and not below the q of 0.0.4', (t) => {
  t.true(prefersOpenMetrics(PROMETHEUS_ACCEPT), 'Prometheus 2.42');
  t.true(prefersOpenMetrics('application/openmetrics-text'));
  t.true(prefersOpenMetrics('application/openmetrics-text;version=0.0.1'));
  t.true(prefersOpenMetrics('Application/OpenMetrics-Text; Version="1.0.0"; q=0.3, text/plain; q=0.2'));
  t.true(prefersOpenMetrics('application/openmetrics-text, */*'), 'named beats a wildcard at the same q');
  t.false(prefersOpenMetrics(undefined), 'no Accept header');
  t.false(prefersOpenMetrics(''));
  t.false(prefersOpenMetrics('text/plain'));
  t.false(prefersOpenMetrics('text/plain;version=0.0.4'));
  t.false(prefersOpenMetrics('*/*'));
  t.false(prefersOpenMetrics('application/*'), 'a wildcard is not asking for it');
  t.false(prefersOpenMetrics('application/openmetrics-text;q=0'), 'q=0 refuses it');
  t.false(prefersOpenMetrics('application/openmetrics-text;version=1.0.0;q=0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'));
  t.false(prefersOpenMetrics('application/openmetrics-text;version=1.0.0;q=0, application/openmetrics-text;version=0.0.1'), 'q=0 on the version served is not overridden by an older name');
  t.false(prefersOpenMetrics('application/openmetrics-text;version=2.0.0'), 'a version not served');
  t.false(prefersOpenMetrics('text/plain, application/openmetrics-text;q=0.5'), 'the client prefers 0.0.4');
  t.false(prefersOpenMetrics('application/openmetrics-text;q=abc'), 'a q that is not a number drops the range');
});

function get(address: AddressInfo, accept: string | undefined): Promise<{ status: number; type: string; vary: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = accept === undefined ? {} : { Accept: accept };
    const req = request({ host: address.address, port: address.port, path: '/metrics', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), vary: res.headers.vary, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('HTTP: /metrics answers each Accept header with its Content-Type and the matching body', async (t) => {
  const source: ServeSource = { metricFamilies: () => families, culpritStacks: () => ({}), holdsProfile: () => new Uint8Array(), captures: () => [] };
  const { server, address } = await startServer(source, '127.0.0.1', 0);
  t.teardown(() => server.close());
  const cases: [string | undefined, string, string][] = [
    [PROMETHEUS_ACCEPT, OPENMETRICS_TYPE, renderOpenMetrics(families)],
    ['application/openmetrics-text;version=1.0.0', OPENMETRICS_TYPE, renderOpenMetrics(families)],
    ['text/plain', PROMETHEUS_TYPE, renderExposition(families)],
    [undefined, PROMETHEUS_TYPE, renderExposition(families)],
    ['*/*', PROMETHEUS_TYPE, renderExposition(families)],
    ['application/openmetrics-text;q=0', PROMETHEUS_TYPE, renderExposition(families)],
  ];
  for (const [accept, type, body] of cases) {
    const response = await get(address, accept);
    t.is(response.status, 200, String(accept));
    t.is(response.type, type, String(accept));
    t.is(response.body, body, String(accept));
    t.is(response.vary, 'Accept', String(accept));
  }
});
