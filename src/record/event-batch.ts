// The one in-memory form of events that every source produces and every
// sink consumes: columns of typed arrays, no object per event.

/** pfn of a CMA event that has none (the kernel wrote all ones: failed allocation). */
export const NO_PFN = -1;

export interface EventBatch {
  length: number;
  /** enum pageref_event_type (src/record/event-types.ts). */
  type: Uint8Array;
  /** Nanoseconds since the capture's monotonic base (CaptureHeader.monotonicBaseNs). */
  tsNs: Float64Array;
  /** page_ref: pfn; test_pages_isolated: start_pfn; cma: pfn or NO_PFN. */
  pfn: Float64Array;
  /** page_ref: page flags; test_pages_isolated: end_pfn; cma: count. */
  flags: Float64Array;
  /** page_ref: keyed hash of page->mapping (0 stays 0, the low two type bits are kept), or
   *  with --raw-pointers (CaptureHeader.rawPointers) the pointer itself, rounded to a double
   *  (the file keeps it exact; no view compares mappings); test_pages_isolated: fin_pfn; cma: align. */
  mapping: Float64Array;
  pid: Uint32Array;
  tgid: Uint32Array;
  count: Int32Array;
  mapcount: Int32Array;
  val: Int32Array;
  ret: Int32Array;
  /** Capture-wide stack id (see StackTable), or a negative value: none (-1) or -errno. */
  stackId: Int32Array;
  cpu: Uint16Array;
  mt: Uint8Array;
  /** Index into the capture's string table. */
  comm: Uint32Array;
  /** cma: index of the area name in the string table; others: 0 (the empty string). */
  name: Uint32Array;
}

export function allocateBatch(length: number): EventBatch {
  return {
    length,
    type: new Uint8Array(length),
    tsNs: new Float64Array(length),
    pfn: new Float64Array(length),
    flags: new Float64Array(length),
    mapping: new Float64Array(length),
    pid: new Uint32Array(length),
    tgid: new Uint32Array(length),
    count: new Int32Array(length),
    mapcount: new Int32Array(length),
    val: new Int32Array(length),
    ret: new Int32Array(length),
    stackId: new Int32Array(length),
    cpu: new Uint16Array(length),
    mt: new Uint8Array(length),
    comm: new Uint32Array(length),
    name: new Uint32Array(length),
  };
}

/** Isolation of [start_pfn, end_pfn) failed at fin_pfn: the page that could not be isolated. */
export function isolationFailed(batch: EventBatch, i: number): boolean {
  return batch.mapping[i] < batch.flags[i];
}

/** cma_alloc_finish reports failure by errorno (since 6.3) and by a NULL page (val 0, all kernels). */
export function cmaAllocFailed(batch: EventBatch, i: number): boolean {
  return batch.ret[i] !== 0 || batch.val[i] === 0;
}
