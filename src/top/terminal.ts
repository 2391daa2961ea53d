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
// terminal; what the terminal cannot take at once is written from a timer,
// and frames that come meanwhile are dropped but the newest (drawn once the
// one in flight is out), so a slow terminal never delays draining the ring
// buffer. (Dropping the rest of a frame instead left a TCG guest's tmux,
// whose pty takes 4 KiB at a time, on the first frame for good.)

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
/** How soon the rest of a frame the terminal could not take is tried again. */
const RETRY_MS = 20;

export class Terminal {
  private active = false;
  private previous: string[] = [];
  private previousSize = '';
  /** Non-blocking descriptor of the same terminal, for frames; the blocking one is kept for restore(). */
  private frameFd = -1;
  private resizeHandler: (() => void) | undefined;
  /** The part of a frame the terminal has not taken yet. */
  private pending: Buffer | undefined;
  /** The newest frame that came while one was in flight. */
  private waiting: string[] | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
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
    if (this.pending) {
      this.waiting = lines;
      return;
    }
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
    if (out !== '') this.send(Buffer.from(out));
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
    if (this.retryTimer) clearTimeout(this.retryTimer);
    // The rest of a frame in flight first: cut off, it could leave half an escape sequence.
    if (this.pending) this.write(this.pending);
    this.pending = undefined;
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
  private write(text: string | Buffer): void {
    const bytes = typeof text === 'string' ? Buffer.from(text) : text;
    try {
      for (let done = 0; done < bytes.length; ) done += writeSync(this.outputFd, bytes, done);
    } catch {
      // the terminal is gone
    }
  }

  /** Writes what the terminal takes now; the rest is retried from a timer (see the top of this file). */
  private send(bytes: Buffer): void {
    let done = 0;
    if (this.frameFd < 0) {
      this.write(bytes);
      done = bytes.length;
    } else {
      try {
        while (done < bytes.length) done += writeSync(this.frameFd, bytes, done);
      } catch (error) {
        // EAGAIN: the terminal is not reading as fast; anything else: it is gone, and the frame with it.
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') done = bytes.length;
      }
    }
    if (done < bytes.length) {
      this.pending = bytes.subarray(done);
      this.retryTimer ??= setTimeout(() => this.retry(), RETRY_MS);
    }
  }

  private retry(): void {
    this.retryTimer = undefined;
    const pending = this.pending;
    if (!pending || !this.active) return;
    this.pending = undefined;
    this.send(pending);
    if (!this.pending && this.waiting) {
      const newest = this.waiting;
      this.waiting = undefined;
      this.draw(newest);
    }
  }
}
