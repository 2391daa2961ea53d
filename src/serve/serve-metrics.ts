// What `pageref serve` exposes on /metrics, as metric families: the state of
// a session (counters the kernel keeps, blame's failures, the culprits) at
// the moment of the scrape.

import type { KernelCounters } from '../capture/schema';
import { EVENT_NAMES, EventName } from '../record/event-types';
import type { Culprit } from './culprits';
import type { FlightStats } from './flight-recorder';
import type { MetricFamily } from './metric-family';

/** Culprit series at most: each is a label set Prometheus keeps, so they stay few. */
export const DEFAULT_CULPRIT_SERIES = 10;

export interface ServeSnapshot {
  /** Events the programs are attached to. */
  eventsAttached: EventName[];
  /** The kernel's per-event counters (indexed like EVENT_NAMES); undefined before the first read. */
  counters: KernelCounters | undefined;
  isolationFailures: number;
  cmaBusyRetries: number;
  cmaFailedAllocations: number;
  /** Distinct pfns with page_ref events seen (per-pfn totals or records). */
  pfnsTracked: number;
  /** Pages the hold table evicted to stay within --max-pfns. */
  evictedPfns: number;
  /** This process's user + system CPU time. */
  cpuSeconds: number;
  /** False on a kernel without the page_ref tracepoints (CONFIG_DEBUG_PAGE_REF unset). */
  pageRefAvailable: boolean;
  /** Pages isolation failed on within the culprit window. */
  busyPfns: number;
  /** Busy pfns forgotten so far: out of the window, or over the bound. */
  busyPfnsForgotten: number;
  culpritWindowSec: number;
  /** Ranked, all of them (of the busy pfns of the window); metricFamilies keeps the first `maxCulprits`. */
  culprits: Culprit[];
  /** serve --flight-dir: files written and deleted; undefined without a flight recorder. */
  flight?: FlightStats;
}

export function metricFamilies(snapshot: ServeSnapshot, maxCulprits: number): MetricFamily[] {
  const perEvent = (values: number[] | undefined) =>
    snapshot.eventsAttached.map((event) => ({ labels: { event }, value: values?.[EVENT_NAMES.indexOf(event)] ?? 0 }));
  const families: MetricFamily[] = [
    { name: 'pageref_events_total', type: 'counter', help: 'Events the kernel fired on each attached tracepoint, before pageref filtered, sampled or summed them.', samples: perEvent(snapshot.counters?.seen) },
    { name: 'pageref_dropped_total', type: 'counter', help: 'Records of each event lost because the ring buffer was full.', samples: perEvent(snapshot.counters?.dropped) },
    { name: 'pageref_stacks_lost_total', type: 'counter', help: 'Records of each event sent without their stack: the stack map was full, or a hash collision kept the stack out.', samples: perEvent(snapshot.counters?.stackLost) },
    { name: 'pageref_sampled_out_total', type: 'counter', help: 'Events of each tracepoint left out in the kernel by --sample-pfn or --sample-events.', samples: perEvent(snapshot.counters?.sampledOut) },
    { name: 'pageref_aggregate_overflow_total', type: 'counter', help: 'page_ref events on pfns beyond the kernel\'s per-pfn slots (--aggregate, --max-pfns): only counted.', samples: perEvent(snapshot.counters?.aggregateOverflow) },
    { name: 'pageref_isolation_failures_total', type: 'counter', help: 'test_pages_isolated events that found a page isolation could not take.', samples: [{ value: snapshot.isolationFailures }] },
    { name: 'pageref_cma_busy_retries_total', type: 'counter', help: 'cma_alloc_busy_retry events: CMA allocations retried because a range was busy.', samples: [{ value: snapshot.cmaBusyRetries }] },
    { name: 'pageref_cma_failed_allocations_total', type: 'counter', help: 'cma_alloc_finish events of allocations that failed.', samples: [{ value: snapshot.cmaFailedAllocations }] },
    { name: 'pageref_pfns_tracked', type: 'gauge', help: 'Distinct pages with page_ref events seen since the start.', samples: [{ value: snapshot.pfnsTracked }] },
    { name: 'pageref_evicted_pfns_total', type: 'counter', help: 'Pages the hold table forgot, least recently touched first, to stay within --max-pfns: blame may miss their holders.', samples: [{ value: snapshot.evictedPfns }] },
    { name: 'pageref_process_cpu_seconds_total', type: 'counter', unit: 'seconds', help: 'User and system CPU time of the pageref process itself.', samples: [{ value: snapshot.cpuSeconds }] },
    { name: 'pageref_page_ref_available', type: 'gauge', help: '1 if the kernel has the page_ref tracepoints (CONFIG_DEBUG_PAGE_REF); 0: only isolation and CMA events are traced.', samples: [{ value: snapshot.pageRefAvailable ? 1 : 0 }] },
    { name: 'pageref_busy_pfns', type: 'gauge', help: `Pages isolation failed on in the last ${snapshot.culpritWindowSec} s (--culprit-window), the culprits' pages.`, samples: [{ value: snapshot.busyPfns }] },
    { name: 'pageref_busy_pfns_forgotten_total', type: 'counter', help: 'Busy pages forgotten: their last failure left the culprit window, or more failed than serve keeps.', samples: [{ value: snapshot.busyPfnsForgotten }] },
    {
      name: 'pageref_culprit_pages',
      type: 'gauge',
      help: 'Busy pages (isolation failed on them in the culprit window) each stack held or released references on; the top stacks only. Frames: /stacks/<stack_id>.',
      samples: snapshot.culprits.slice(0, maxCulprits).map((c) => ({ labels: { stack_id: c.id, kind: c.kind, role: c.role }, value: c.pages })),
    },
  ];
  // Only with --flight-dir: a counter stuck at 0 would read as "nothing failed" where nothing was watched.
  if (snapshot.flight) {
    families.push(
      { name: 'pageref_flight_captures_total', type: 'counter', help: 'Capture files the flight recorder wrote to --flight-dir (one per window of isolation failures and CMA busy retries).', samples: [{ value: snapshot.flight.captures }] },
      { name: 'pageref_flight_captures_deleted_total', type: 'counter', help: 'Flight-recorder files deleted, oldest first, to keep --flight-max-files and --flight-max-bytes.', samples: [{ value: snapshot.flight.deleted }] },
    );
  }
  return families;
}
