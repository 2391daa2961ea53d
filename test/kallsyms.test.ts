import test from 'ava';
import { KernelSymbols } from '../src/symbols/kallsyms';

const KALLSYMS = [
  'ffffffff81000000 T _stext',
  'ffffffff81176600 t get_page_from_freelist',
  'ffffffff81176d00 T __alloc_pages_nodemask',
  'ffffffff81200000 D some_data',
  'ffffffff8117c900 T release_pages',
  'ffffffffc0001000 t ext4_fill_super\t[ext4]',
  '',
].join('\n');

test('addresses become function+offset of the symbol at or below them', (t) => {
  const symbols = KernelSymbols.parse(KALLSYMS);
  t.is(symbols.size, 5, 'data symbols are not text');
  t.is(symbols.symbolize(0xffffffff81176659n), 'get_page_from_freelist+0x59');
  t.is(symbols.symbolize(0xffffffff81176d22n), '__alloc_pages_nodemask+0x22');
  t.is(symbols.symbolize(0xffffffff8117c9e4n), 'release_pages+0xe4');
  t.is(symbols.symbolize(0xffffffff81176600n), 'get_page_from_freelist+0x0');
  t.is(symbols.symbolize(0xffffffffc0001010n), 'ext4_fill_super+0x10 [ext4]');
  t.is(symbols.symbolize(0xffffffff80000000n), '[unknown]');
});

test('hidden addresses (not root) give no symbols rather than wrong ones', (t) => {
  const hidden = KALLSYMS.replace(/^[0-9a-f]{16}/gm, '0000000000000000');
  const symbols = KernelSymbols.parse(hidden);
  t.is(symbols.size, 0);
  t.is(symbols.symbolize(0xffffffff81176659n), '[unknown]');
});

test('this machine\'s /proc/kallsyms loads and names a known function', (t) => {
  const symbols = KernelSymbols.load();
  t.true(symbols.size > 1000);
});
