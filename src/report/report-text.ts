// The human form of `pageref report`: what happened, what was lost, and the
// pages that matter, most important first.

import type { ReportJson } from './capture-summary';
import { RAW_POINTERS_WARNING } from './capture-exposure';

export function renderReport(report: ReportJson): string {
  const lines: string[] = [];
  const c = report.capture;
  lines.push(`pageref capture from ${c.hostname || 'unknown host'}, kernel ${report.kernel.release}, started ${c.startTime}, ${c.durationSec.toFixed(1)} s`);
  if (c.truncated) lines.push(`WARNING: capture incomplete: ${c.truncated}`);
  if (c.rawPointers) lines.push(`WARNING: ${RAW_POINTERS_WARNING}`);
  if (c.eventsMissing.length > 0) lines.push(`not traced (the kernel lacks them): ${c.eventsMissing.join(', ')}`);
  const total = Object.values(report.events).reduce((a, b) => a + b, 0);
  lines.push(`${total} records, ${report.pfns} distinct pfns, stacks ${c.stacksMode}${c.stopReason ? `, stopped by ${c.stopReason}` : ''}`);
  if (report.aggregatedEvents > 0) lines.push(`${report.aggregatedEvents} page_ref events summed per pfn in the kernel (--aggregate)`);
  for (const limit of report.limits) lines.push(`${limit.startsWith('evicted:') ? 'EVICTED' : 'note'}: ${limit.replace(/^evicted: /, '')}`);
  if (report.estimatedPageRefEvents !== null) lines.push(`ESTIMATE: about ${report.estimatedPageRefEvents} page_ref events on all pages (the sample's ${report.estimatedPageRefEvents / report.sampling.scale} times ${report.sampling.scale})`);
  lines.push(report.dropped > 0 ? `DROPPED: ${report.dropped} records were lost (ring buffer full): counts below are incomplete` : 'dropped: 0');
  if (report.kernelCounters) {
    const stackLost = Object.values(report.kernelCounters).reduce((a, k) => a + k.stackLost, 0);
    const misses = Object.values(report.kernelCounters).reduce((a, k) => a + k.recursionMisses, 0);
    const overflow = Object.values(report.kernelCounters).reduce((a, k) => a + k.aggregateOverflow, 0);
    const sampledOut = Object.values(report.kernelCounters).reduce((a, k) => a + k.sampledOut, 0);
    if (stackLost > 0) lines.push(`stacks lost: ${stackLost} (stack map full or hash collision)`);
    if (sampledOut > 0) lines.push(`sampled out in the kernel: ${sampledOut} events (--sample-pfn, --sample-events)`);
    if (overflow > 0) lines.push(`per-pfn totals overflowed: ${overflow} events on pfns without a slot (--max-pfns)`);
    if (misses > 0) lines.push(`events missed by the kernel while another BPF program ran on the CPU: ${misses}`);
  }
  lines.push('');
  lines.push('events');
  for (const [name, count] of Object.entries(report.events)) {
    if (count > 0 || c.eventsAttached.includes(name)) lines.push(`  ${name.padEnd(24)} ${String(count).padStart(10)}`);
  }
  const iso = report.isolation;
  if (iso.tests > 0 || report.cma.allocations > 0) {
    lines.push('');
    lines.push(`isolation: ${iso.failures} of ${iso.tests} tests failed; CMA: ${report.cma.allocations} allocations, ${report.cma.failedAllocations} failed, ${report.cma.busyRetries} busy retries`);
    if (iso.busyPfns.length > 0) {
      lines.push(`  busiest pfns (failed isolation there): ${iso.busyPfns.map((b) => `${b.pfn} x${b.failures}`).join(', ')}`);
    }
  }
  if (report.top.length > 0) {
    lines.push('');
    lines.push('pages with the most references outstanding');
    lines.push(`  ${'pfn'.padEnd(14)} ${'gets'.padStart(8)} ${'puts'.padStart(8)} ${'net'.padStart(6)} ${'events'.padStart(8)}`);
    for (const row of report.top) {
      lines.push(`  ${row.pfn.padEnd(14)} ${String(row.gets).padStart(8)} ${String(row.puts).padStart(8)} ${String(row.net).padStart(6)} ${String(row.events).padStart(8)}`);
    }
  }
  return lines.join('\n') + '\n';
}
