// `pageref top --replay FILE --speed 0` on a real terminal: tmux (Debian
// package tmux) runs it in a detached session, keys go in with send-keys,
// and the screen comes back with capture-pane. Each test has its own tmux
// server (-L socket) and kills it at the end.

import test, { ExecutionContext } from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PAGEREF } from './helpers/cli';
import { tempPath } from './helpers/capture';
import { topCapture } from './helpers/top-capture';

const haveTmux = spawnSync('tmux', ['-V']).status === 0;
let sessions = 0;

class Tmux {
  readonly socket = `pageref-top-${process.pid}-${++sessions}`;

  constructor(t: ExecutionContext, columns: number, rows: number) {
    // A plain shell with a known prompt and no rc files, so the screen after quitting is predictable.
    this.run('-f', '/dev/null', 'new-session', '-d', '-x', String(columns), '-y', String(rows), 'env', 'PS1=shell$ ', 'sh');
    t.teardown(() => {
      spawnSync('tmux', ['-L', this.socket, 'kill-server']);
    });
  }

  run(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
  }

  keys(...keys: string[]): void {
    this.run('send-keys', ...keys);
  }

  type(text: string): void {
    this.run('send-keys', '-l', text);
    this.run('send-keys', 'Enter');
  }

  screen(): string {
    return this.run('capture-pane', '-p');
  }

  /** 1 while a program has the alternate screen. */
  alternate(): string {
    return this.run('display', '-p', '#{alternate_on}').trim();
  }

  cursorShown(): string {
    return this.run('display', '-p', '#{cursor_flag}').trim();
  }

  /** Waits until the screen matches (or `timeoutMs` passes), and returns it. */
  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    let screen = '';
    while (Date.now() < until) {
      screen = this.screen();
      if (pattern.test(screen)) return screen;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`the screen never matched ${pattern}; it shows:\n${screen}`);
  }
}

/** The PFN column of the table, top to bottom. */
function pfnColumn(screen: string): string[] {
  return screen.split('\n').filter((l) => /^0x[0-9a-f]+ /.test(l)).map((l) => l.split(' ')[0]);
}

async function startTop(t: ExecutionContext, columns = 120, rows = 40): Promise<{ tmux: Tmux; sttyBefore: string; sttyAfter: string }> {
  const tmux = new Tmux(t, columns, rows);
  const sttyBefore = tempPath('stty-before.txt');
  const sttyAfter = tempPath('stty-after.txt');
  tmux.type(`stty -g > ${sttyBefore}; ${process.execPath} ${PAGEREF} top --replay ${topCapture(true)} --speed 0; echo "top exited $?"; stty -g > ${sttyAfter}`);
  await tmux.waitFor(/end of capture/);
  return { tmux, sttyBefore, sttyAfter };
}

async function quitRestores(t: ExecutionContext, tmux: Tmux, sttyBefore: string, sttyAfter: string, how: () => void, status = 0): Promise<void> {
  how();
  // top's exit status, then the shell's next prompt.
  const screen = await tmux.waitFor(/top exited \d+\n(.*\n)*shell\$ ?$/m);
  t.regex(screen, new RegExp(`top exited ${status}`));
  t.is(tmux.alternate(), '0', 'the alternate screen was left');
  t.is(tmux.cursorShown(), '1', 'the cursor is shown');
  // The command line, as typed before top started (lines joined: a resize may have rewrapped it).
  t.regex(screen.replace(/\n/g, ''), /stty -g > \S+stty-after\.txt/, 'the shell\'s screen is back');
  t.false(/Pages: /.test(screen), 'nothing of top is left on the main screen');
  t.is(readFileSync(sttyAfter, 'utf8'), readFileSync(sttyBefore, 'utf8'), 'terminal modes as before (raw mode off, echo on)');
}

if (!haveTmux) {
  test('top on a terminal needs tmux', (t) => {
    t.fail('tmux not found: install the Debian package tmux (scripts/setup.sh does)');
  });
} else {
  test('tmux: sorting changes the order, the views switch, Enter expands, q quits and restores the terminal', async (t) => {
    const { tmux, sttyBefore, sttyAfter } = await startTop(t);
    t.is(tmux.alternate(), '1', 'top draws on the alternate screen');
    t.is(tmux.cursorShown(), '0');
    let screen = tmux.screen();
    t.regex(screen, /^Pages: 5 of 5 +sort net↓/m);
    t.regex(screen, /^q quit +\? help/m, 'the footer lists the keys');
    const byNet = pfnColumn(screen);
    t.is(byNet.length, 5);

    tmux.keys('<', '<', '<'); // net -> map -> ref -> pfn
    screen = await tmux.waitFor(/sort pfn↑/);
    const byPfn = pfnColumn(screen);
    t.deepEqual(byPfn, [...byNet].sort());
    t.notDeepEqual(byPfn, byNet, 'the order changed');
    t.regex(screen, /^PFN↑ +REF +MAP +NET /m, 'the sorted column is marked');
    tmux.keys('r');
    screen = await tmux.waitFor(/sort pfn↓/);
    t.deepEqual(pfnColumn(screen), [...byPfn].reverse());

    tmux.keys('2');
    screen = await tmux.waitFor(/^Holders \(by stack\)/m);
    t.regex(screen, /^KIND +PAGES↓ +REFS +PROCS +OLDEST/m);
    t.regex(screen, /^pin +1 +1 +1 .*0x17ac9 +holder +try_grab_page\+0x40/m);

    tmux.keys('3');
    screen = await tmux.waitFor(/^Isolation failures: 1 of 1/m);
    t.regex(screen, /^Culprits: try_grab_page\+0x40 \(pin\) 1 page, 1 failure/m);
    t.regex(screen, /^0x17ac9 +1 +1 +2 .*holder\[9018\] try_grab_page\+0x40 \(pin\)/m);
    tmux.keys('Enter');
    screen = await tmux.waitFor(/holders at the failures/);
    t.regex(screen, /^ {8}follow_page_pte\+0x1f0$/m, 'the full stack');

    tmux.keys('?');
    screen = await tmux.waitFor(/^Keys$/m);
    tmux.keys('x');
    await tmux.waitFor(/^Culprits:/m);

    await quitRestores(t, tmux, sttyBefore, sttyAfter, () => tmux.keys('q'));
  });

  test('tmux: the filter prompt narrows the pages; columns follow a resize', async (t) => {
    const { tmux, sttyBefore, sttyAfter } = await startTop(t, 140, 30);
    let screen = tmux.screen();
    t.regex(screen, /^PFN .* FLAGS +TOP HOLDER$/m);
    tmux.keys('/');
    await tmux.waitFor(/^Filter: _/m);
    tmux.run('send-keys', '-l', '0x20000-0x20002');
    tmux.keys('Enter');
    screen = await tmux.waitFor(/filter 0x20000-0x20002/);
    t.deepEqual(pfnColumn(screen).sort(), ['0x20000', '0x20001']);

    tmux.run('resize-window', '-x', '60', '-y', '30');
    screen = await tmux.waitFor(/^PFN +REF +NET↓ .*AGE +TOP HOLDER$/m);
    for (const line of screen.split('\n')) t.true(line.length <= 60, line);
    t.false(screen.includes('FLAGS'));
    t.false(screen.includes('EVENTS'));
    t.regex(screen, /^0x20001 .* churn\[77\] \[no stack\]/m);
    await quitRestores(t, tmux, sttyBefore, sttyAfter, () => tmux.keys('C-c'));
  });

  test('tmux: SIGTERM restores the terminal too', async (t) => {
    const { tmux, sttyBefore, sttyAfter } = await startTop(t);
    const shell = tmux.run('display', '-p', '#{pane_pid}').trim();
    const top = execFileSync('pgrep', ['-P', shell], { encoding: 'utf8' }).trim().split('\n')[0];
    t.regex(top, /^\d+$/);
    await quitRestores(t, tmux, sttyBefore, sttyAfter, () => process.kill(Number(top), 'SIGTERM'));
  });
}
