// `pageref serve --log FILE`: lines appended to FILE, which SIGHUP reopens
// so that logrotate can move it away; without --log, lines go to stderr.

import { closeSync, openSync, writeSync } from 'node:fs';

export class LogFile {
  private fd: number | undefined;

  constructor(private readonly path: string | undefined) {
    this.open();
  }

  write(line: string): void {
    const text = `${new Date().toISOString()} ${line}\n`;
    if (this.fd === undefined) process.stderr.write(text);
    else writeSync(this.fd, text);
  }

  /** Closes the file and opens the path again (a new file if it was moved). */
  reopen(): void {
    this.close();
    this.open();
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private open(): void {
    // 0600: the log names the pages and tasks pageref saw.
    if (this.path !== undefined) this.fd = openSync(this.path, 'a', 0o600);
  }
}
