// The terminal layer of pageref top with stand-ins: a file for the terminal's
// output, a PassThrough for its input. What it writes when it takes and gives
// back the terminal, the lines it redraws, the keys it reports, and that a
// crash gives the terminal back before the process exits.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import type { ReadStream, WriteStream } from 'node:tty';
import { Terminal } from '../src/top/terminal';
import type { KeyPress } from '../src/top/top-keys';
import { tempPath } from './helpers/capture';

function fakeTerminal() {
  const path = tempPath('tty.out');
  const fd = openSync(path, 'a');
  const raw: boolean[] = [];
  const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: (on: boolean) => raw.push(on) });
  const output = Object.assign(new PassThrough(), { columns: 40, rows: 5 });
  const terminal = new Terminal(input as unknown as ReadStream, output as unknown as WriteStream, fd);
  return { terminal, input, output, raw, written: () => readFileSync(path, 'latin1'), close: () => closeSync(fd) };
}

test('enter takes the alternate screen, hides the cursor and reads raw keys; restore gives all back, once', (t) => {
  const tty = fakeTerminal();
  t.teardown(tty.close);
  const keys: KeyPress[] = [];
  tty.terminal.enter((key) => keys.push(key), () => undefined);
  t.deepEqual(tty.raw, [true]);
  t.true(tty.written().startsWith('\x1b[?1049h\x1b[?25l'));
  tty.input.write('q');
  tty.input.write('\x1b[A');
  t.deepEqual(keys.map((k) => k.name), ['q', 'up']);
  tty.terminal.restore();
  t.deepEqual(tty.raw, [true, false]);
  t.true(tty.written().endsWith('\x1b[0m\x1b[?25h\x1b[?1049l'));
  const length = tty.written().length;
  tty.terminal.restore();
  t.is(tty.written().length, length, 'a second restore writes nothing');
});

test('draw rewrites only the lines that changed, and everything after a resize', (t) => {
  const tty = fakeTerminal();
  t.teardown(tty.close);
  tty.terminal.enter(() => undefined, () => undefined);
  const before = tty.written().length;
  tty.terminal.draw(['one', 'two', 'three']);
  const first = tty.written().slice(before);
  t.true(first.includes('\x1b[H\x1b[2J'), 'the first frame clears');
  t.true(first.includes('\x1b[1;1Hone') && first.includes('\x1b[3;1Hthree'));
  const mark = tty.written().length;
  tty.terminal.draw(['one', 'TWO', 'three']);
  t.is(tty.written().slice(mark), '\x1b[2;1HTWO\x1b[0m\x1b[K');
  tty.output.columns = 30;
  const resized = tty.written().length;
  tty.terminal.draw(['one', 'TWO', 'three']);
  t.true(tty.written().slice(resized).includes('\x1b[2J'));
  tty.terminal.draw(['a', 'b', 'c', 'd', 'the last row stops one column short of the edge']);
  t.true(tty.written().endsWith('\x1b[5;1Hthe last row stops one column\x1b[0m\x1b[K'), 'no scrolling from the last column of the last row');
  tty.terminal.restore();
});

test('an uncaught exception gives the terminal back before the process exits with status 1', (t) => {
  const tty = fakeTerminal();
  t.teardown(tty.close);
  const before = new Set(process.listeners('uncaughtException'));
  tty.terminal.enter(() => undefined, () => undefined);
  const crash = process.listeners('uncaughtException').find((l) => !before.has(l));
  if (!crash) return t.fail('enter() added no uncaughtException handler');
  const exit = process.exit;
  const stderrWrite = process.stderr.write;
  let status: number | undefined;
  let said = '';
  process.exit = ((code?: number) => {
    status = code;
  }) as typeof process.exit;
  process.stderr.write = ((text: string) => {
    said += text;
    return true;
  }) as typeof process.stderr.write;
  try {
    crash(new Error('boom'), 'uncaughtException');
  } finally {
    process.exit = exit;
    process.stderr.write = stderrWrite;
  }
  t.is(status, 1);
  t.regex(said, /^pageref: internal error: Error: boom/);
  t.deepEqual(tty.raw, [true, false]);
  t.true(tty.written().endsWith('\x1b[?25h\x1b[?1049l'));
  t.false(process.listeners('uncaughtException').includes(crash), 'the handler is removed with the terminal');
});

test('a frame larger than the terminal takes at once is finished from a timer; the newest frame meanwhile follows it', async (t) => {
  // A FIFO stands in for a slow pty: it takes 64 KiB until someone reads.
  const fifo = tempPath('tty.fifo');
  execFileSync('mkfifo', [fifo]);
  const fd = openSync(fifo, constants.O_RDWR);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  t.teardown(() => {
    closeSync(fd);
    closeSync(reader);
  });
  const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => undefined });
  const output = Object.assign(new PassThrough(), { columns: 2000, rows: 50 });
  const terminal = new Terminal(input as unknown as ReadStream, output as unknown as WriteStream, fd);
  terminal.enter(() => undefined, () => undefined);
  const first = Array.from({ length: 50 }, (_, i) => `line ${i} `.padEnd(1999, String.fromCharCode(97 + (i % 26))));
  terminal.draw(first); // 100 KB: more than the FIFO holds
  terminal.draw(['CHANGED', ...first.slice(1)]);
  const buffer = Buffer.alloc(1 << 20);
  let text = '';
  for (let i = 0; i < 100 && !text.includes('CHANGED'); i++) {
    try {
      const n = readSync(reader, buffer, 0, buffer.length, null);
      text += buffer.toString('latin1', 0, n);
    } catch {
      // EAGAIN: nothing to read yet
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  terminal.restore();
  t.true(text.includes(first[49].slice(0, 1998)), 'the first frame arrived whole');
  t.true(text.indexOf('CHANGED') > text.indexOf(first[49].slice(0, 100)), 'then the newest frame, as a change of one line');
  t.false(text.slice(text.indexOf('CHANGED')).includes(first[10]), 'not redrawn whole');
});
