// The addon's CRC-32 (native/crc32.cc), which checksums the records the
// recorder writes, against zlib's, which every capture reader checks with.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { loadAddon } from '../src/native/load-addon';

const addon = loadAddon();

test('the addon folds on this machine (x86-64 with PCLMULQDQ), so the folding is what is tested', (t) => {
  t.true(addon.crc32Folds);
});

test('the same value as zlib for every length to 300 bytes, at every alignment, from any initial value', (t) => {
  const pool = randomBytes(300 + 16);
  let mismatches = 0;
  for (let length = 0; length <= 300; length++) {
    for (let offset = 0; offset < 16; offset++) {
      const bytes = pool.subarray(offset, offset + length);
      const initial = pool.readUInt32LE(length % 200);
      if (addon.crc32(bytes, initial) !== crc32(bytes, initial)) mismatches++;
      if (addon.crc32(bytes, 0) !== crc32(bytes)) mismatches++;
    }
  }
  t.is(mismatches, 0);
});

test('the same value as zlib for large buffers: a drain\'s full batch, odd lengths, all ones and all zeros', (t) => {
  for (const bytes of [randomBytes(8192 * 96), randomBytes(1_000_003), Buffer.alloc(65_537, 0xff), Buffer.alloc(4096)]) {
    t.is(addon.crc32(bytes, 0), crc32(bytes), `${bytes.length} bytes`);
    t.is(addon.crc32(bytes, 0xdeadbeef), crc32(bytes, 0xdeadbeef), `${bytes.length} bytes from 0xdeadbeef`);
  }
});

test('continuing from a part gives the checksum of the whole, as the record block frame uses it', (t) => {
  const whole = randomBytes(10_000);
  for (const cut of [0, 1, 15, 64, 4096, 9999]) {
    t.is(addon.crc32(whole.subarray(cut), crc32(whole.subarray(0, cut))), crc32(whole), `cut at ${cut}`);
  }
});

test('anything but a Uint8Array and a 32-bit initial value is refused', (t) => {
  const call = addon.crc32 as unknown as (...args: unknown[]) => number;
  t.throws(() => call('text', 0), { instanceOf: TypeError });
  t.throws(() => call(new Uint16Array(4), 0), { instanceOf: TypeError });
  t.throws(() => call(new Uint8Array(4), -1), { instanceOf: TypeError });
  t.throws(() => call(new Uint8Array(4), 2 ** 32), { instanceOf: TypeError });
  t.throws(() => call(new Uint8Array(4)), { instanceOf: TypeError });
});
