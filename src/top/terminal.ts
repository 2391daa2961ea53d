// The interactive screen of `pageref top`, with Node's own tty and readline
// modules and a handful of ANSI sequences (alternate screen, cursor
// position, erase line): a full-screen list needs nothing more, and every
// terminal library on npm is either ESM-only, unmaintained, or far larger
// than this file (README, "pageref top").
//
// Contract: enter() takes the terminal (alternate screen, cursor hidden, raw
// input); restore() gives it back and may be called any number of times,
// from any path: quit, SIGINT/SIGTERM, an uncaught exception, process exit.
// draw() rewrites only the lines that changed since the last frame, and
// never blocks: frames go through a second, non-blocking descriptor of the
// terminal, and one the terminal cannot take at once is dropped (the next
// is drawn whole), so a slow terminal never delays draining the ring buffer.

import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { emitKeypressEvents } from 'node:readline';
import type { ReadStream, WriteStream } from 'node:tty';
import type { KeyPress } from './top-keys';
import type { ScreenSize } from './top-render';

const ALT_SCREEN_ON = '\x1b[?1049h';
const ALT_SCREEN_OFF = '\x1b[?1049l';
const CURSOR_HIDE = '\x1b[?25l';
const CURSOR_SHOW = '\x1b[?25h';
const CLEAR = '\x1b[H\x1b[2J';
const ERASE_LINE = '\x1b[K';
const RESET_ATTRIBUTES = '\x1b[0m';

export class Terminal {
  private active = false;
  private previous: string[] = [];
  private previousSize = '';
  /** Non-blocking descriptor of the same terminal, for frames; the blocking one is kept for restore(). */
  private frameFd = -1;
  private resizeHandler: (() => void) | undefined;
  private readonly restoreOnExit = () => this.restore();
  private readonly onCrash = (error: unknown) => {
    this.restore();
    process.stderr.write(`pageref: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  };

  constructor(
    private readonly input: ReadStream,
    private readonly output: WriteStream,
    /** The descriptor of `output`. */
    private readonly outputFd = 1,
  ) {}

  size(): ScreenSize {
    return { columns: this.output.columns || 80, rows: this.output.rows || 24 };
  }

  enter(onKey: (key: KeyPress) => void, onResize: () => void): void {
    if (this.active) return;
    this.active = true;
    process.on('exit', this.restoreOnExit);
    process.on('uncaughtException', this.onCrash);
    process.on('unhandledRejection', this.onCrash);
    emitKeypressEvents(this.input);
    this.input.setRawMode(true);
    this.input.on('keypress', (_text: string | undefined, key: KeyPress | undefined) => onKey(key ?? { sequence: _text }));
    this.input.resume();
    this.resizeHandler = onResize;
    this.output.on('resize', onResize);
    try {
      // A new open file description: O_NONBLOCK on it leaves the shell's
      // descriptor alone. O_APPEND does nothing on a terminal; on a file
      // (the tests' stand-in) it keeps both descriptors' writes in order.
      this.frameFd = openSync(`/proc/self/fd/${this.outputFd}`, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOCTTY | constants.O_APPEND);
    } catch {
      this.frameFd = -1;
    }
    this.write(ALT_SCREEN_ON + CURSOR_HIDE + CLEAR);
  }

  /** Draws `lines` (one per screen row, already fitted to the width). */
  draw(lines: string[]): void {
    if (!this.active) return;
    const size = this.size();
    const sizeKey = `${size.columns}x${size.rows}`;
    let out = '';
    if (sizeKey !== this.previousSize) {
      out += CLEAR;
      this.previous = [];
      this.previousSize = sizeKey;
    }
    const rows = Math.min(lines.length, size.rows);
    for (let i = 0; i < rows; i++) {
      // The last row stops short of the last column: writing there would scroll some terminals.
      const line = i === size.rows - 1 ? lines[i].slice(0, Math.max(0, size.columns - 1)) : lines[i];
      if (line === this.previous[i]) continue;
      out += `\x1b[${i + 1};1H${line}${RESET_ATTRIBUTES}${ERASE_LINE}`;
    }
    for (let i = rows; i < this.previous.length; i++) out += `\x1b[${i + 1};1H${ERASE_LINE}`;
    this.previous = lines.slice(0, rows);
    if (out !== '' && !this.writeFrame(out)) this.previousSize = '';
  }

  /** Gives the terminal back: main screen, cursor, cooked input. Idempotent; synchronous, so it works while the process dies. */
  restore(): void {
    if (!this.active) return;
    this.active = false;
    try {
      this.input.setRawMode(false);
    } catch {
      // the terminal is gone
    }
    this.input.pause();
    if (this.resizeHandler) this.output.off('resize', this.resizeHandler);
    if (this.frameFd >= 0) {
      try {
        closeSync(this.frameFd);
      } catch {
        // already closed
      }
      this.frameFd = -1;
    }
    this.write(RESET_ATTRIBUTES + CURSOR_SHOW + ALT_SCREEN_OFF);
    process.off('exit', this.restoreOnExit);
    process.off('uncaughtException', this.onCrash);
    process.off('unhandledRejection', this.onCrash);
  }

  /** All of `text` on the blocking descriptor; errors (the terminal is gone) are ignored. */
  private write(text: string): void {
    const bytes = Buffer.from(text);
    try {
      for (let done = 0; done < bytes.length; ) done += writeSync(this.outputFd, bytes, done);
    } catch {
      // the terminal is gone
    }
  }

  /** A frame on the non-blocking descriptor; false when the terminal took it only in part, or not at all. */
  private writeFrame(text: string): boolean {
    if (this.frameFd < 0) {
      this.write(text);
      return true;
    }
    const bytes = Buffer.from(text);
    try {
      for (let done = 0; done < bytes.length; ) done += writeSync(this.frameFd, bytes, done);
      return true;
    } catch {
      // EAGAIN: the terminal is not reading fast enough
      return false;
    }
  }
}
