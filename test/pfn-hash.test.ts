// src/record/pfn-hash.ts must pick the same pfns as the kernel side: the
// expected values are what pageref_pfn_hash() in bpf/pageref.h returns,
// compiled with gcc on this machine.

import test from 'ava';
import { pfnHash, pfnSampledIn, stackSampledIn } from '../src/record/pfn-hash';

test('pfnHash equals pageref_pfn_hash for small, 32-bit-edge and 52-bit pfns', (t) => {
  const expected: [number, number][] = [
    [0, 0],
    [1, 1364076727],
    [0x17ac9, 13127077],
    [0xffffffff, 2180083513],
    [0x100000000, 301794027],
    [2 ** 52 - 1, 1131688322],
    [123456789, 3126909082],
  ];
  for (const [pfn, hash] of expected) t.is(pfnHash(pfn), hash, `pfn ${pfn}`);
});

test('sampling keeps about 1 in N pfns, neighbours spread, and N of 1 keeps all', (t) => {
  let kept = 0;
  for (let pfn = 0x100000; pfn < 0x100000 + 64_000; pfn++) if (pfnSampledIn(pfn, 64)) kept++;
  t.true(kept > 800 && kept < 1200, `${kept} of 64000 kept`);
  t.true(pfnSampledIn(12345, 1));
  let both = 0;
  let stacks = 0;
  for (let pfn = 0; pfn < 64_000; pfn++) {
    const s = stackSampledIn(pfn, 8);
    if (s) stacks++;
    if (s && pfnSampledIn(pfn, 8)) both++;
  }
  t.true(stacks > 7000 && stacks < 9000, `${stacks} stack pfns`);
  // Independent choices: about 1/64 of the pfns are in both samples, not 1/8.
  t.true(both > 700 && both < 1300, `${both} in both`);
});
