// Did the pinned pages make isolation fail? A shared check of the VM tests.

/**
 * Returns null when the pinned pages explain the isolation failures, else
 * what does not fit. A real kernel can also find a page nobody pinned busy
 * for a moment (locked, under migration, in a per-CPU batch): a CI run on
 * 6.12 once saw one such page beside the pinned one. So the failures at
 * pinned pages must outnumber all the others, and there must be some.
 */
export function unexplainedFailures(failuresByPfn: Iterable<readonly [number, number]>, pinned: ReadonlySet<number>): string | null {
  let atPins = 0;
  let elsewhere = 0;
  const strays: string[] = [];
  for (const [pfn, failures] of failuresByPfn) {
    if (pinned.has(pfn)) {
      atPins += failures;
    } else {
      elsewhere += failures;
      strays.push(`0x${pfn.toString(16)} x${failures}`);
    }
  }
  if (atPins > 0 && atPins > elsewhere) return null;
  return `${atPins} failed isolations at pinned pages, ${elsewhere} elsewhere (${strays.slice(0, 8).join(', ')})`;
}

/** The pages a workload pinned, from its PINNED_PFNS_FILE (decimal or 0x… per line). */
export function parsePinned(text: string): Set<number> {
  return new Set(
    text
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => /^(0x[0-9a-f]+|\d+)$/i.test(line))
      .map(Number),
  );
}
