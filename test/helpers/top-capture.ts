// A small capture for the `pageref top` tests (CLI and tmux).

import { EventType } from '../../src/record/event-types';
import { tempPath, writeCapture, WriteCaptureOptions } from './capture';
import { rawRecord } from './records';

const S = 1_000_000_000n;
const BASE = 1_000_000_000n; // the test header's monotonic base

/**
 * 2.5 s of capture: "holder" pins 0x17ac9 (stack 1, try_grab_page) at 0.1 s;
 * "churn" takes and drops references on 0x20000..0x20003 every 0.1 s; an
 * isolation fails at 0x17ac9 at 1.5 s; the pin is dropped (stack 2) at 2.4 s,
 * unless `keepPin`. `capture` sets how it was recorded and its trailer's counters.
 */
export function topCapture(keepPin = false, capture: Omit<WriteCaptureOptions, 'perBatch'> = {}): string {
  const path = tempPath('top.pgref');
  const records = [rawRecord({ type: EventType.PageRefMod, tsNs: BASE + S / 10n, pfn: 0x17ac9n, val: 1, count: 2, mapcount: 1, pid: 9018, tgid: 9018, comm: 'holder', stackId: 1, word1: 0x1n, mt: 4 })];
  for (let i = 1n; i <= 24n; i++) {
    const ts = BASE + (i * S) / 10n + 1000n;
    records.push(rawRecord({ type: EventType.PageRefMod, tsNs: ts, pfn: 0x20000n + (i % 4n), val: 1, count: 2, mapcount: 1, pid: 77, tgid: 77, comm: 'churn', mt: 1 }));
    if (i % 2n === 0n) records.push(rawRecord({ type: EventType.PageRefModAndTest, tsNs: ts + 10n, pfn: 0x20000n + (i % 4n), val: -1, count: 1, mapcount: 1, pid: 77, tgid: 77, comm: 'churn', mt: 1 }));
  }
  records.push(rawRecord({ type: EventType.TestPagesIsolated, tsNs: BASE + (15n * S) / 10n, pfn: 0x17800n, word1: 0x17c00n, word2: 0x17ac9n, pid: 9131, tgid: 9131, comm: 'cma' }));
  records.push(rawRecord({ type: EventType.CmaAllocBusyRetry, tsNs: BASE + (15n * S) / 10n + 10n, pfn: 0x17800n, word1: 1024n, pid: 9131, tgid: 9131, name: 'reserved' }));
  if (!keepPin) records.push(rawRecord({ type: EventType.PageRefModAndTest, tsNs: BASE + (24n * S) / 10n + 5000n, pfn: 0x17ac9n, val: -1, count: 1, mapcount: 1, pid: 9018, tgid: 9018, comm: 'holder', stackId: 2, mt: 4 }));
  records.sort((a, b) => (a.readBigUInt64LE(0) < b.readBigUInt64LE(0) ? -1 : 1));
  writeCapture(path, records, { ...capture, perBatch: 7 });
  return path;
}

