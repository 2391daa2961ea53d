// Selecting the best few rows of a large table without sorting it: a view
// wants the top 50 of a million pfns every frame.

/**
 * The best `limit` items that `each` visits, best first by `better` (negative:
 * a comes first). A bounded insertion list: O(items * limit) at worst, about
 * O(items) when most items lose to the last one kept, no full sort.
 *
 * `each` may hand over the same object again and again, refilled for every
 * item (a cursor, so that scanning allocates nothing): an item is copied with
 * `copy` only when it is kept.
 */
export function topN<T>(each: (visit: (item: T) => void) => void, limit: number, better: (a: T, b: T) => number, copy: (item: T) => T = (item) => item): T[] {
  const kept: T[] = [];
  if (limit <= 0) return kept;
  each((item) => {
    if (kept.length === limit && better(item, kept[limit - 1]) >= 0) return;
    const candidate = copy(item);
    let at = kept.length < limit ? kept.length : limit - 1;
    if (kept.length < limit) kept.push(candidate);
    while (at > 0 && better(candidate, kept[at - 1]) < 0) {
      kept[at] = kept[at - 1];
      at--;
    }
    kept[at] = candidate;
  });
  return kept;
}
