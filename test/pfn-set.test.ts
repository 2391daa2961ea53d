import test from 'ava';
import { PfnSet } from '../src/holds/pfn-set';

test('PfnSet counts distinct pfns, sparse and dense, against a Set', (t) => {
  const set = new PfnSet();
  const reference = new Set<number>();
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (let i = 0; i < 200_000; i++) {
    // Dense low pfns, a few far apart (holes in the physical address space).
    const pfn = i % 10 === 0 ? next() * 4096 + (next() % 7) : next() % 300_000;
    t.is(set.add(pfn), !reference.has(pfn));
    reference.add(pfn);
  }
  t.is(set.size, reference.size);
  for (const pfn of [0, 1, 299_999, 2 ** 40, 2 ** 52 - 1]) t.is(set.has(pfn), reference.has(pfn));
});

test('PfnSet takes a bit per pfn of the chunks in use: 6 M dense pfns in under 1 MiB', (t) => {
  const set = new PfnSet();
  for (let pfn = 0; pfn < 6_000_000; pfn++) set.add(pfn);
  t.is(set.size, 6_000_000);
  t.true(set.bytes <= 1 << 20, `${set.bytes} bytes`);
  t.false(set.add(5_999_999));
  t.true(set.add(6_000_000));
});
