// The keyed pointer hash in its two places: the addon applies it to live
// records as it drains them (native/pointer-hash.h), PointerHasher to
// records and text read elsewhere (src/record/pointer-hash.ts). One function.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { loadAddon } from '../src/native/load-addon';
import { PointerHasher } from '../src/record/pointer-hash';

const addon = loadAddon();

function nativeHash(key: Uint8Array, lo: number, hi: number): number {
  const [low, high] = addon.hashPointer(key, lo, hi);
  return high * 2 ** 32 + low;
}

test('the addon hashes a pointer to what PointerHasher gives under the same key', (t) => {
  let mismatches = 0;
  for (let k = 0; k < 20; k++) {
    const key = randomBytes(16);
    const hasher = new PointerHasher(key);
    const words = new Uint32Array(randomBytes(8 * 500).buffer);
    for (let i = 0; i < words.length; i += 2) {
      // Kernel-like pointers too: 0xffff8... high words, the low two bits set or not.
      for (const [lo, hi] of [[words[i], words[i + 1]], [words[i], 0xffff8880 | (words[i + 1] & 0xf)], [words[i] & ~3, 0xffffea00]]) {
        if (nativeHash(key, lo >>> 0, hi >>> 0) !== hasher.hash(lo >>> 0, hi >>> 0)) mismatches++;
      }
    }
  }
  t.is(mismatches, 0);
});

test('NULL stays NULL, the low two bits are kept, and every hash is below 2^52', (t) => {
  const key = randomBytes(16);
  t.is(nativeHash(key, 0, 0), 0);
  for (const low of [0, 1, 2, 3]) {
    const hash = nativeHash(key, 0x15a78dc0 | low, 0xffff8800);
    t.is(hash % 4, low);
    t.true(hash > 0 && hash < 2 ** 52);
  }
});

test('hashPointer refuses keys that are not 16 bytes and words that are not 32-bit', (t) => {
  const call = addon.hashPointer as unknown as (...args: unknown[]) => unknown;
  t.throws(() => call(new Uint8Array(8), 1, 2), { instanceOf: TypeError });
  t.throws(() => call(new Uint8Array(16), -1, 2), { instanceOf: TypeError });
  t.throws(() => call(new Uint8Array(16), 1, 2 ** 32), { instanceOf: TypeError });
});
