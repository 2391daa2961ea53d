// Byte offsets of struct pageref_record (bpf/pageref.h). Little-endian, as
// the only architecture the BPF program is built for (x86_64) is.
// test/layout.test.ts compares every entry with offsetof() from the compiler.

export const RECORD_SIZE = 96;

export const RecordField = {
  ts_ns: { offset: 0, size: 8 },
  pfn: { offset: 8, size: 8 },
  'page.flags': { offset: 16, size: 8 },
  'page.mapping': { offset: 24, size: 8 },
  'isolation.end_pfn': { offset: 16, size: 8 },
  'isolation.fin_pfn': { offset: 24, size: 8 },
  'cma.count': { offset: 16, size: 8 },
  'cma.align': { offset: 24, size: 8 },
  pid: { offset: 32, size: 4 },
  tgid: { offset: 36, size: 4 },
  count: { offset: 40, size: 4 },
  mapcount: { offset: 44, size: 4 },
  val: { offset: 48, size: 4 },
  ret: { offset: 52, size: 4 },
  stack_id: { offset: 56, size: 4 },
  cpu: { offset: 60, size: 2 },
  type: { offset: 62, size: 1 },
  mt: { offset: 63, size: 1 },
  comm: { offset: 64, size: 16 },
  name: { offset: 80, size: 16 },
} as const;

export type RecordFieldName = keyof typeof RecordField;

/** stack_id of a record taken without stacks; other negative values are -errno. */
export const STACK_NONE = -1;

/** Frames kept per stack by the BPF program. */
export const STACK_DEPTH = 32;

/** struct pageref_counters: nine u64 per CPU and event type. */
export const CounterField = {
  seen: { offset: 0, size: 8 },
  filtered: { offset: 8, size: 8 },
  sampled_out: { offset: 16, size: 8 },
  counted_only: { offset: 24, size: 8 },
  emitted: { offset: 32, size: 8 },
  dropped: { offset: 40, size: 8 },
  stack_lost: { offset: 48, size: 8 },
  aggregated: { offset: 56, size: 8 },
  overflow: { offset: 64, size: 8 },
} as const;
export const COUNTERS_SIZE = 72;

/** struct pageref_pfn_stats: --aggregate's per-pfn slot. src/live/pfn-totals-reader.ts reads it as words. */
export const PfnStatsField = {
  last_ts_ns: { offset: 0, size: 8 },
  gets: { offset: 8, size: 4 },
  puts: { offset: 12, size: 4 },
  events: { offset: 16, size: 4 },
  last_count: { offset: 20, size: 4 },
} as const;
export const PFN_STATS_SIZE = 24;

/** bpf/pageref.h PAGEREF_MAX_PFN_RANGES */
export const MAX_PFN_RANGES = 16;
