// The culprits `pageref serve` reports: stacks that held, or released, the
// pages isolation could not take, ranked and bounded so that a metrics
// label set stays small. Each is named by a short hash of its symbolised
// frames, so that the same code path keeps its id across restarts (and
// across machines running the same kernel build).

import { createHash } from 'node:crypto';
import type { BlameAnalysis } from '../blame/blame-analysis';
import { KIND_RANK, ReferenceKind, referenceKind, releaseKind } from '../blame/stack-kinds';

export type CulpritRole = 'holder' | 'releaser';

export interface Culprit {
  /** Short hash of the frames: the `stack_id` label. */
  id: string;
  kind: ReferenceKind;
  /**
   * holder: held the page when isolation failed; releaser: dropped a
   * reference the page had at the failure (with --stacks armed, the only
   * stacks seen of references taken before the first failure).
   */
  role: CulpritRole;
  /** Busy pages this stack held or released references on. */
  pages: number;
  frames: string[];
}

const NO_STACK = ['[no stack]'];
const ID_HEX_DIGITS = 12;

/** The stable id of a stack: the first 48 bits of a SHA-256 of its frames, in hex. */
export function stackIdOf(frames: readonly string[]): string {
  return createHash('sha256').update(frames.join('\n')).digest('hex').slice(0, ID_HEX_DIGITS);
}

/** Every culprit of the busy pages so far, the most pages first (pins before other kinds on a tie). */
export function culprits(blame: BlameAnalysis): Culprit[] {
  const found = new Map<string, Culprit>();
  const add = (frames: string[], kind: ReferenceKind, role: CulpritRole, counted: Set<string>) => {
    const id = stackIdOf(frames);
    const key = `${id} ${kind} ${role}`;
    let culprit = found.get(key);
    if (!culprit) {
      culprit = { id, kind, role, pages: 0, frames };
      found.set(key, culprit);
    }
    // A page counts once per culprit, however many of its references that stack had.
    if (!counted.has(key)) {
      counted.add(key);
      culprit.pages++;
    }
  };
  for (const busy of blame.busy.values()) {
    const counted = new Set<string>();
    for (const holder of busy.holders) {
      const frames = holder.stackId >= 0 ? blame.frames(holder.stackId) : [];
      add(frames.length > 0 ? frames : NO_STACK, frames.length > 0 ? referenceKind(frames) : 'other', 'holder', counted);
    }
    for (const releaser of busy.releasers) {
      const frames = releaser.stackId >= 0 ? blame.frames(releaser.stackId) : [];
      // The kind of the reference dropped: its holder's when the pairing
      // rule found one, else what the put's own stack says it releases.
      const released = releaser.releasedStackId >= 0 ? blame.frames(releaser.releasedStackId) : [];
      const kind: ReferenceKind = released.length > 0 ? referenceKind(released) : releaseKind(frames) || 'other';
      add(frames.length > 0 ? frames : NO_STACK, kind, 'releaser', counted);
    }
  }
  return [...found.values()].sort((a, b) => b.pages - a.pages || KIND_RANK[a.kind] - KIND_RANK[b.kind] || a.id.localeCompare(b.id));
}
