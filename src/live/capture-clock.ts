// The clock of a live capture's records: nanoseconds since its header's
// monotonicBaseNs. bpf_ktime_get_ns() and process.hrtime() both read
// CLOCK_MONOTONIC, so "now" on that clock is hrtime minus the base.

import type { CaptureHeader } from '../capture/schema';

export function captureNowNs(header: Pick<CaptureHeader, 'monotonicBaseNs'>): number {
  return Number(process.hrtime.bigint() - BigInt(header.monotonicBaseNs));
}
