import test from 'ava';
import { PfnTable } from '../src/holds/pfn-table';

// A small deterministic generator, so failures reproduce.
function lcg(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

test('counts per pfn match a Map through many growths, with pfns up to 2^40', (t) => {
  const random = lcg(42);
  const table = new PfnTable(16);
  const expected = new Map<number, { gets: number; puts: number; events: number }>();
  for (let i = 0; i < 200_000; i++) {
    const pfn = random() < 0.5 ? Math.floor(random() * 5000) : Math.floor(random() * 2 ** 40);
    const got = random() < 0.6 ? 1 : 0;
    const put = got ? 0 : 1;
    table.add(pfn, got, put);
    const row = expected.get(pfn) ?? { gets: 0, puts: 0, events: 0 };
    row.gets += got;
    row.puts += put;
    row.events += 1;
    expected.set(pfn, row);
  }
  t.is(table.size, expected.size);
  for (const [pfn, row] of expected) {
    const actual = table.get(pfn);
    if (!actual || actual.gets !== row.gets || actual.puts !== row.puts || actual.events !== row.events) {
      t.fail(`pfn ${pfn}: ${JSON.stringify(actual)} != ${JSON.stringify(row)}`);
      return;
    }
  }
  t.is(table.get(2 ** 41), undefined);
});

test('top returns the same rows as a full sort', (t) => {
  const random = lcg(7);
  const table = new PfnTable();
  for (let i = 0; i < 50_000; i++) table.add(Math.floor(random() * 3000), random() < 0.55 ? 1 : 0, random() < 0.45 ? 1 : 0);
  const order = (a: { net: number; pfn: number }, b: { net: number; pfn: number }) => b.net - a.net || a.pfn - b.pfn;
  const all = table.top(1e9, order);
  t.is(all.length, table.size);
  for (const limit of [0, 1, 5, 20, 2999, 5000]) {
    t.deepEqual(table.top(limit, order), all.slice(0, limit), `limit ${limit}`);
  }
});
