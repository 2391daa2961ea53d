// The VM tests' check that pinned pages, not others, made isolation fail.

import test from 'ava';
import { parsePinned, unexplainedFailures } from './vm/pinned-failures';

const pinned = parsePinned('0x10\n0x20\n\n48\nnot a pfn\n');

test('the pinned pfns are read in hex and decimal, other lines ignored', (t) => {
  t.deepEqual([...pinned], [0x10, 0x20, 48]);
});

test('failures only at pinned pages are explained', (t) => {
  t.is(unexplainedFailures([[0x10, 33]], pinned), null);
});

test('a page busy for a moment beside the pins is allowed, as long as the pins dominate', (t) => {
  t.is(unexplainedFailures([[0x10, 32], [0xfe9e, 1]], pinned), null);
});

test('failures mostly elsewhere, or none at all at the pins, are not', (t) => {
  t.is(unexplainedFailures([[0x10, 1], [0xfe9e, 1]], pinned), '1 failed isolations at pinned pages, 1 elsewhere (0xfe9e x1)');
  t.is(unexplainedFailures([[0xfe9e, 3]], pinned), '0 failed isolations at pinned pages, 3 elsewhere (0xfe9e x3)');
  t.is(unexplainedFailures([], pinned), '0 failed isolations at pinned pages, 0 elsewhere ()');
});
