// The human form of `pageref blame`: a diagnosis, most important culprit
// first (pins before other references, more pages first), each with the
// stack that took the reference and what released it later.

import type { BlameJson } from './blame-report';
import { RAW_POINTERS_WARNING } from '../report/capture-exposure';
import { KIND_MEANING, KIND_RANK } from './stack-kinds';

const MAX_CULPRITS = 5;
const MAX_FRAMES = 14;

export function renderBlame(blame: BlameJson): string {
  const out: string[] = [];
  out.push(`pageref blame: kernel ${blame.kernel}: ${blame.failures} failed isolation tests (of ${blame.isolationTests}) on ${blame.busyPfns.length} busy pages; ${blame.busyRetries} CMA busy retries, ${blame.failedAllocations} failed CMA allocations`);
  if (blame.truncated) out.push(`WARNING: capture incomplete: ${blame.truncated}`);
  if (blame.recording.rawPointers) out.push(`WARNING: ${RAW_POINTERS_WARNING}`);
  if (blame.dropped > 0) out.push(`WARNING: ${blame.dropped} records were lost in the kernel: some holders may be missing`);
  if (blame.stackLost > 0) out.push(`WARNING: ${blame.stackLost} records lost their stack in the kernel (stack map full or hash collision): some holders and releasers show [no stack]`);
  if (blame.sampledOut > 0) out.push(`Note: ${blame.sampledOut} events were sampled out in the kernel (--sample-pfn, --sample-events).`);
  for (const limit of blame.limits) out.push(limit.startsWith('evicted:') ? `WARNING: ${limit.replace(/^evicted: /, '')}.` : `Note: ${limit}.`);
  if (blame.evicted.outstandingRefs > 0) out.push(`WARNING: ${blame.evicted.outstandingRefs} references still outstanding went with evicted pages: some holders may be missing`);
  const unsampled = blame.busyPfns.filter((b) => !b.sampled).length;
  if (unsampled > 0) out.push(`Note: ${unsampled} of the ${blame.busyPfns.length} busy pages are outside the pfn sample: their holders were not recorded.`);
  if (blame.failures === 0) {
    out.push('No isolation failed while recording: nothing to blame.');
    return out.join('\n') + '\n';
  }
  const holders = blame.byStack
    .filter((g) => g.role === 'holder')
    .sort((a, b) => KIND_RANK[a.kind] - KIND_RANK[b.kind] || b.pages - a.pages || b.failures - a.failures);
  if (holders.length === 0) {
    out.push('');
    out.push(...noHolderExplanation(blame));
  }
  holders.slice(0, MAX_CULPRITS).forEach((group, n) => {
    out.push('');
    out.push(`Culprit ${n + 1}: ${group.frame} held ${group.pages} busy page${group.pages === 1 ? '' : 's'} through ${group.failures} failure${group.failures === 1 ? '' : 's'}`);
    out.push(`  kind: ${group.kind}, ${KIND_MEANING[group.kind]}`);
    out.push(`  taken by: ${group.comms.join(', ')}; example pfn ${group.examplePfn}`);
    const example = blame.busyPfns.find((b) => b.pfn === group.examplePfn);
    const holder = example?.holders.find((h) => h.stack.join() === group.stack.join());
    if (holder) out.push(`  at the failure: held for ${seconds(holder.heldNs)} by ${holder.comm}[${holder.pid}], ${holder.refs} ref${holder.refs === 1 ? '' : 's'} (${holder.certain ? 'certain' : 'inferred: puts had to be paired by rule'})`);
    out.push('  stack (innermost first):');
    for (const frame of group.stack.slice(0, MAX_FRAMES)) out.push(`    ${frame}`);
    if (group.stack.length > MAX_FRAMES) out.push(`    ... ${group.stack.length - MAX_FRAMES} more`);
    const releaser = example?.releasers.find((r) => r.releases?.join() === group.stack.join());
    if (releaser) out.push(`  released ${seconds(releaser.afterNs)} after the failure by ${releaser.comm}[${releaser.pid}] in ${releaser.stack.slice(0, 6).join(' <- ') || '[no stack]'}`);
  });
  if (holders.length > MAX_CULPRITS) out.push(`\n(${holders.length - MAX_CULPRITS} more holder stacks in --json)`);
  const releasers = blame.byStack.filter((g) => g.role === 'releaser');
  if (releasers.length > 0) {
    out.push('');
    out.push('Released after the failures by:');
    for (const group of releasers.slice(0, MAX_CULPRITS)) {
      out.push(`  ${group.pages} page${group.pages === 1 ? '' : 's'}: ${group.comms.join(', ')} in ${group.stack.slice(0, 8).join(' <- ') || '[no stack]'}`);
    }
  }
  out.push('');
  out.push('How blame works: a holder is a reference taken while recording (an allocation counts) and not yet dropped when isolation');
  out.push('failed. A put cancels a reference of the kind its stack releases (unpin, pipe release: a pin; unmap: a mapping\'s), else the');
  out.push('newest of the same process, else the oldest ("inferred" when it had to choose). Pins (GUP, splice) rank first: migration');
  out.push('cannot move a page with references beyond its mappings and page cache.');
  return out.join('\n') + '\n';
}

// Why no holder was found depends on how the capture was made.
function noHolderExplanation(blame: BlameJson): string[] {
  const { stacksMode, aggregated } = blame.recording;
  if (stacksMode === 'armed') {
    return [
      'No holder in this capture: with --stacks armed a page is recorded only from the first failed isolation that covered it,',
      'and the busy pages were referenced before that. The releasers below let go of them; record with --stacks all to see the gets.',
    ];
  }
  if (aggregated) return ['No holder in this capture: it has per-pfn totals (--aggregate), not the events that would name one.'];
  return [
    'No reference taken while recording was still held at a failure: the busy pages were referenced before tracing began.',
    'Record from before the workload starts (or longer) to see who took them.',
  ];
}

function seconds(ns: number): string {
  return ns >= 1e9 ? `${(ns / 1e9).toFixed(1)} s` : ns >= 1e6 ? `${(ns / 1e6).toFixed(1)} ms` : `${(ns / 1e3).toFixed(0)} us`;
}
