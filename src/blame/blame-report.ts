// The blame verdict as data: busy pfns with their holders and releasers, and
// the same grouped by stack so that thousands of failures read as a few
// culprits. This is the JSON contract of `pageref blame --json` (README).

import { hexPfn } from '../report/capture-summary';
import { captureLimits, EvictedPfns, evictionLimit, samplingOf } from '../report/capture-limits';
import { kernelLosses } from '../report/kernel-losses';
import { pfnSampledIn } from '../record/pfn-hash';
import { BlameAnalysis, NO_HOLDER } from './blame-analysis';
import { KIND_RANK, ReferenceKind, referenceKind, tellingFrame } from './stack-kinds';

export interface BlameJson {
  kernel: string;
  /** Failed isolation tests (fin_pfn < end_pfn). */
  failures: number;
  isolationTests: number;
  busyRetries: number;
  failedAllocations: number;
  /** Records lost in the kernel: the verdict may miss holders when this is not 0. */
  dropped: number;
  /** Records the kernel sent without their stack (stack map full, hash collision): their holders and releasers show none. */
  stackLost: number;
  /** Events --sample-pfn or --sample-events left out in the kernel. */
  sampledOut: number;
  truncated: string | null;
  /** What the capture could not see by how it was recorded (sampling, --aggregate, armed stacks): sentences. */
  limits: string[];
  /** Pages the hold table forgot to stay within --max-pfns, and the references still outstanding on them (holders that may be missing). */
  evicted: EvictedPfns & { outstandingRefs: number };
  /** How the capture was recorded, as far as it limits the verdict, and whether it holds raw kernel pointers. */
  recording: { stacksMode: string; samplePfn: number; sampleEvents: number; aggregated: boolean; rawPointers: boolean };
  busyPfns: {
    /** False when --sample-pfn left this page out: its history was not recorded. */
    sampled: boolean;
    pfn: string;
    failures: number;
    /** Refcount before the first failure (-1: never seen). */
    count: number;
    mapcount: number;
    untrackedRefs: number;
    holders: { stack: string[]; kind: ReferenceKind; comm: string; pid: number; refs: number; heldNs: number; certain: boolean }[];
    /** `releases`: the stack of the holder whose reference it dropped, by the pairing rule; null for an untracked one. */
    releasers: { stack: string[]; comm: string; pid: number; refs: number; afterNs: number; releases: string[] | null }[];
  }[];
  byStack: {
    role: 'holder' | 'releaser';
    kind: ReferenceKind;
    /** The innermost frame that names the code path. */
    frame: string;
    stack: string[];
    comms: string[];
    pages: number;
    failures: number;
    examplePfn: string;
  }[];
}

export function blameJson(analysis: BlameAnalysis): BlameJson {
  const busy = [...analysis.busy.values()].sort((a, b) => b.failures - a.failures || a.pfn - b.pfn);
  const groups = new Map<string, BlameJson['byStack'][number] & { pfns: Set<number> }>();
  const group = (role: 'holder' | 'releaser', stack: string[], comm: string, pfn: number, failures: number) => {
    const key = `${role}\n${stack.join('\n')}`;
    let entry = groups.get(key);
    if (!entry) {
      entry = { role, kind: referenceKind(stack), frame: tellingFrame(stack), stack, comms: [], pages: 0, failures: 0, examplePfn: hexPfn(pfn), pfns: new Set() };
      groups.set(key, entry);
    }
    if (!entry.comms.includes(comm)) entry.comms.push(comm);
    if (!entry.pfns.has(pfn)) {
      entry.pfns.add(pfn);
      entry.pages++;
      entry.failures += failures;
    }
  };

  const header = analysis.captureHeader;
  const sampling = samplingOf(header);
  const busyPfns = busy.map((b) => {
    const holders = b.holders.map((h) => {
      const stack = analysis.frames(h.stackId);
      group('holder', stack, h.comm, b.pfn, b.failures);
      return { stack, kind: referenceKind(stack), comm: h.comm, pid: h.tgid, refs: h.refs, heldNs: h.heldNs, certain: h.certain };
    });
    holders.sort((x, y) => KIND_RANK[x.kind] - KIND_RANK[y.kind] || y.heldNs - x.heldNs);
    const releasers = b.releasers.map((r) => {
      const stack = analysis.frames(r.stackId);
      group('releaser', stack, r.comm, b.pfn, b.failures);
      return { stack, comm: r.comm, pid: r.tgid, refs: r.refs, afterNs: r.afterNs, releases: r.releasedStackId === NO_HOLDER ? null : analysis.frames(r.releasedStackId) };
    });
    return { sampled: pfnSampledIn(b.pfn, sampling.pfn), pfn: hexPfn(b.pfn), failures: b.failures, count: b.count, mapcount: b.mapcount, untrackedRefs: b.untrackedRefs, holders, releasers };
  });

  const byStack = [...groups.values()]
    .sort((a, b) => b.pages - a.pages || KIND_RANK[a.kind] - KIND_RANK[b.kind] || b.failures - a.failures)
    .map(({ pfns: _pfns, ...entry }) => entry);
  const losses = kernelLosses(analysis.lastCounters);
  const evicted = { maxPfns: analysis.holds.maxPfns, ...analysis.holds.evictions };
  return {
    kernel: analysis.captureHeader?.kernelRelease ?? '',
    failures: analysis.failures,
    isolationTests: analysis.isolationTests,
    busyRetries: analysis.busyRetries,
    failedAllocations: analysis.cmaFailedAllocations,
    dropped: losses.dropped,
    stackLost: losses.stackLost,
    sampledOut: losses.sampledOut,
    truncated: analysis.ending?.truncated ?? null,
    limits: [...captureLimits(header, analysis.lastCounters), ...evictionLimit(evicted)],
    evicted,
    recording: {
      stacksMode: header?.options?.stacksMode || (header?.options?.stacks ? 'all' : 'none'),
      samplePfn: sampling.pfn,
      sampleEvents: sampling.events,
      aggregated: (header?.options?.aggregateSlots ?? 0) > 0,
      rawPointers: header?.rawPointers === true,
    },
    busyPfns,
    byStack,
  };
}
