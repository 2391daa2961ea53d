// Which text format /metrics answers in, from the request's Accept header.
// Prometheus names application/openmetrics-text first and the 0.0.4
// text/plain after it with a lower q; clients that name neither (curl, a
// browser, "*/*", no header) keep getting 0.0.4, as before OpenMetrics was
// served.

import type { MetricFamily } from './metric-family';
import { OPENMETRICS_CONTENT_TYPE, renderOpenMetrics } from './openmetrics-text';
import { PROMETHEUS_CONTENT_TYPE, renderExposition } from './prometheus-text';

interface MediaRange {
  type: string;
  subtype: string;
  version: string | undefined;
  q: number;
}

interface Offer {
  type: string;
  subtype: string;
  /** The version served; a range without a version matches it too. */
  version: string;
  /** Older version names a range may ask with, answered with `version`. */
  sameAs: string[];
}

/** 0.0.1, the pre-1.0 draft Prometheus offers second, is the same text for counters and gauges. */
const OPENMETRICS: Offer = { type: 'application', subtype: 'openmetrics-text', version: '1.0.0', sameAs: ['0.0.1'] };
const PROMETHEUS_TEXT: Offer = { type: 'text', subtype: 'plain', version: '0.0.4', sameAs: [] };

/**
 * True when the client names OpenMetrics, with q above 0 and at least the q
 * it gives 0.0.4 text. Only a range that names it counts: a wildcard is not
 * asking for it.
 */
export function prefersOpenMetrics(accept: string | undefined): boolean {
  const ranges = parseAccept(accept ?? '');
  const openMetrics = quality(ranges.filter((range) => range.subtype !== '*'), OPENMETRICS);
  return openMetrics > 0 && openMetrics >= quality(ranges, PROMETHEUS_TEXT);
}

/** The body and Content-Type of /metrics for a request with this Accept header. */
export function renderMetrics(families: MetricFamily[], accept: string | undefined): { contentType: string; body: string } {
  if (prefersOpenMetrics(accept)) return { contentType: OPENMETRICS_CONTENT_TYPE, body: renderOpenMetrics(families) };
  return { contentType: PROMETHEUS_CONTENT_TYPE, body: renderExposition(families) };
}

/** "type/subtype;version=x;q=0.5, ..." as ranges; a range with a q that is not a number from 0 to 1 is dropped. */
function parseAccept(accept: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const part of accept.split(',')) {
    const [mediaType, ...parameters] = part.split(';').map((text) => text.trim());
    const [type, subtype] = mediaType.toLowerCase().split('/');
    if (!type || !subtype) continue;
    const parameter = (name: string) => parameters.find((p) => p.toLowerCase().startsWith(`${name}=`))?.slice(name.length + 1).replace(/^"(.*)"$/, '$1');
    const q = Number(parameter('q') ?? '1');
    if (q >= 0 && q <= 1) ranges.push({ type, subtype, version: parameter('version'), q });
  }
  return ranges;
}

// The q of the most specific range that matches `offer` (RFC 9110 12.5.1:
// text/plain;version=0.0.4 beats text/plain, which beats text/*, which beats
// */*); 0 when none matches.
function quality(ranges: MediaRange[], offer: Offer): number {
  let best = { specificity: -1, q: 0 };
  for (const range of ranges) {
    const specificity = matchSpecificity(range, offer);
    if (specificity > best.specificity) best = { specificity, q: range.q };
  }
  return best.q;
}

// -1: no match; 0: */*; 1: type/*; 2: type/subtype; 3: with a version read
// the same as the one served; 4: with the version served, so that a q=0 on
// it is not overridden by an older name of it.
function matchSpecificity(range: MediaRange, offer: Offer): number {
  if (range.type === '*') return range.subtype === '*' ? 0 : -1;
  if (range.type !== offer.type) return -1;
  if (range.subtype === '*') return 1;
  if (range.subtype !== offer.subtype) return -1;
  if (range.version === undefined) return 2;
  if (range.version === offer.version) return 4;
  return offer.sameAs.includes(range.version) ? 3 : -1;
}
