// Runs `pageref top`: a source (live tracing or a replayed capture) feeds
// the state; at the end of every sampling interval the state's rates roll
// over and a frame is drawn (interactive) or a snapshot printed (--batch,
// --json). Drawing happens on its own schedule, from a snapshot, never from
// inside the source's draining.

import { basename } from 'node:path';
import { hostname } from 'node:os';
import type { ReadStream, WriteStream } from 'node:tty';
import { BpfError } from '../native/tracer';
import { LiveCaptureOptions, runLiveCapture } from '../live/live-capture';
import { RingFillPeak } from '../live/ring-fill-peak';
import { stopOnSignals } from '../live/stop-signals';
import { hexPfn } from '../report/capture-summary';
import { ReplayPlayer } from './replay-player';
import { Terminal } from './terminal';
import type { TopFilter } from './top-filter';
import { applyKey, initialView, KeyPress } from './top-keys';
import { orderedRows, render, ViewState } from './top-render';
import { Culprit, FailureRow, HolderRow, PageRow, rowKey, Snapshot, SnapshotQuery, SourceInfo, takeSnapshot, TopHeader, TopView } from './top-snapshot';
import { TopState } from './top-state';

/** Frames are drawn at most this often, however fast a replay ticks. */
const MIN_FRAME_MS = 100;

export interface TopOptions {
  /** Sampling interval (-d), seconds: wall clock live, capture time in a replay. */
  delaySec: number;
  /** --batch N: print N snapshots, then stop; null: the interactive screen. */
  batch: number | null;
  json: boolean;
  view: TopView;
  sort?: string;
  filter: TopFilter;
  /** Rows per view in batch and JSON output. */
  rows: number;
  /** --max-pfns: per-pfn state at most. */
  maxPfns: number;
  /** Where batch and JSON output go (stdout). */
  write(text: string): void;
  /** stderr lines. */
  log(line: string): void;
  /** The terminal, for the interactive screen. */
  tty?: { input: ReadStream; output: WriteStream };
}

/** What the session needs of its source. */
interface SourceControl {
  info(): SourceInfo;
  /** Live: the ring buffer's peak fill since the previous call (RingFillPeak.take). */
  ringFill?(): number | null;
  stop(): void;
  setPaused?(paused: boolean): void;
}

class TopSession {
  readonly state: TopState;
  private view: ViewState;
  private snapshot: Snapshot | undefined;
  private printed = 0;
  private lastTickNs = 0;
  private terminal: Terminal | undefined;
  private cpu = process.cpuUsage();
  private cpuWallMs = Date.now();
  private lastDrawMs = 0;
  private drawTimer: NodeJS.Timeout | undefined;
  private finishing: (() => void) | undefined;
  readonly done: Promise<void>;
  source: SourceControl | undefined;

  constructor(private readonly options: TopOptions) {
    this.state = new TopState(options.maxPfns);
    this.view = { ...initialView(options.view, options.sort), filter: options.filter };
    this.done = new Promise((resolve) => {
      this.finishing = resolve;
    });
  }

  /** The source's clock passed the end of a sampling interval. */
  tick(nowNs: number): void {
    this.state.tick(nowNs, this.cpuPercent(), this.source?.ringFill?.() ?? null);
    this.lastTickNs = nowNs;
    if (this.options.batch !== null) {
      this.print(nowNs);
      if (this.printed >= this.options.batch) this.finish();
    } else if (!this.view.paused) {
      this.scheduleDraw();
    }
  }

  /** A replay reached the end of its capture at `lastNs`. */
  ended(lastNs: number): void {
    if (lastNs > this.lastTickNs || this.printed === 0) this.state.tick(Math.max(lastNs, this.lastTickNs), this.cpuPercent());
    if (this.options.batch !== null) {
      if (lastNs > this.lastTickNs || this.printed === 0) this.print(Math.max(lastNs, this.lastTickNs));
      this.finish();
    } else {
      this.draw(true);
    }
  }

  finish(): void {
    this.finishing?.();
  }

  /** Takes the terminal (interactive sessions). */
  enterScreen(): void {
    const tty = this.options.tty;
    if (!tty || this.options.batch !== null) return;
    this.terminal = new Terminal(tty.input, tty.output);
    this.terminal.enter(
      (key) => this.key(key),
      () => this.draw(true),
    );
    this.draw(true);
  }

  restoreScreen(): void {
    if (this.drawTimer) clearTimeout(this.drawTimer);
    this.terminal?.restore();
  }

  private key(key: KeyPress): void {
    const rows = this.snapshot ? orderedRows(this.snapshot, this.view).map((r) => rowKey(this.snapshot!.view, r)) : [];
    const size = this.terminal?.size() ?? { columns: 80, rows: 24 };
    const wasPaused = this.view.paused;
    const { view, action } = applyKey(this.view, key, rows, Math.max(1, size.rows - 8));
    this.view = view;
    if (view.paused !== wasPaused) this.source?.setPaused?.(view.paused);
    if (action === 'quit') this.finish();
    else if (action === 'snapshot') this.draw(true);
    else if (action === 'redraw') this.draw(false);
  }

  private scheduleDraw(): void {
    const wait = this.lastDrawMs + MIN_FRAME_MS - Date.now();
    if (wait <= 0) this.draw(true);
    else this.drawTimer ??= setTimeout(() => {
      this.drawTimer = undefined;
      if (!this.view.paused) this.draw(true);
    }, wait);
  }

  private draw(fresh: boolean): void {
    if (!this.terminal || !this.source) return;
    const size = this.terminal.size();
    if (fresh || !this.snapshot || this.snapshot.view !== this.view.view) {
      this.snapshot = takeSnapshot(this.state, this.query(size.rows), { ...this.source.info(), paused: this.view.paused });
      this.watchRows(this.snapshot);
    } else {
      this.snapshot = { ...this.snapshot, header: { ...this.snapshot.header, paused: this.view.paused } };
    }
    this.lastDrawMs = Date.now();
    this.terminal.draw(render(this.snapshot, size, this.view, { color: true, footer: true }));
  }

  private query(limit: number): SnapshotQuery {
    return { view: this.view.view, sort: this.view.sort, reverse: this.view.reverse, filter: this.view.filter, limit, expanded: this.view.expanded ?? undefined };
  }

  /** The pages on screen keep a short history, for Enter. */
  private watchRows(snapshot: Snapshot): void {
    const pfns = snapshot.view === 'holders' ? [] : (snapshot.rows as (PageRow | FailureRow)[]).map((r) => r.pfn);
    if (this.view.expanded?.startsWith('pfn:')) pfns.push(Number(this.view.expanded.slice(4)));
    this.state.watch(pfns);
  }

  private print(nowNs: number): void {
    // --batch N is N snapshots: a replay may tick or end once more before
    // the session's finish has taken effect.
    if (!this.source || (this.options.batch !== null && this.printed >= this.options.batch)) return;
    const info = { ...this.source.info(), nowNs };
    const limit = this.options.rows;
    const query = (view: TopView): SnapshotQuery => ({
      view,
      sort: view === this.view.view ? this.view.sort : '',
      reverse: false,
      filter: this.view.filter,
      limit,
    });
    this.printed++;
    if (this.options.json) {
      const pages = takeSnapshot(this.state, query('pages'), info);
      const holders = takeSnapshot(this.state, query('holders'), info);
      const failures = takeSnapshot(this.state, query('failures'), info);
      this.options.write(JSON.stringify(topJson(pages, holders, failures)) + '\n');
    } else {
      const snapshot = takeSnapshot(this.state, query(this.view.view), info);
      const lines = render(snapshot, { columns: Infinity, rows: Infinity }, this.view, { color: false, footer: false });
      this.options.write((this.printed > 1 ? '\n' : '') + lines.join('\n') + '\n');
    }
  }

  private cpuPercent(): number {
    const now = Date.now();
    const used = process.cpuUsage(this.cpu);
    const wall = now - this.cpuWallMs;
    this.cpu = process.cpuUsage();
    this.cpuWallMs = now;
    return wall > 0 ? (used.user + used.system) / 10 / wall : 0;
  }
}

/** `pageref top --replay FILE`. Returns the exit status; a file that is not a capture throws CaptureError before anything is drawn. */
export async function runTopReplay(path: string, speed: number, options: TopOptions): Promise<number> {
  const session = new TopSession(options);
  let ended: string | undefined;
  let failure: string | undefined;
  const player = new ReplayPlayer(session.state, {
    path,
    speed,
    tickNs: options.delaySec * 1e9,
    onTick: (nowNs) => session.tick(nowNs),
    onEnd: (lastNs, how) => {
      ended = how;
      session.ended(lastNs);
    },
    onError: (message) => {
      failure = message;
      session.finish();
    },
  });
  session.source = {
    info: () => ({ source: 'replay', label: basename(path), nowNs: player.nowNs, speed, ended }),
    stop: () => player.stop(),
    setPaused: (paused) => player.setPaused(paused),
  };
  await player.start();
  const stop = stopOnSignals();
  stop.signal.addEventListener('abort', () => session.finish());
  try {
    session.enterScreen();
    await session.done;
  } finally {
    player.stop();
    session.restoreScreen();
    stop.release();
  }
  if (failure) {
    options.log(`pageref top: ${path}: ${failure}`);
    return 1;
  }
  return 0;
}

/** `pageref top` on the running kernel. Returns the exit status. */
export async function runTopLive(live: Omit<LiveCaptureOptions, 'signal' | 'onAttached' | 'onProgress' | 'ringFill'>, options: TopOptions): Promise<number> {
  const session = new TopSession(options);
  const stop = stopOnSignals();
  const quit = new AbortController();
  stop.signal.addEventListener('abort', () => quit.abort(stop.signal.reason));
  void session.done.then(() => quit.abort('quit'));
  let baseNs = 0n;
  let timer: NodeJS.Timeout | undefined;
  const nowNs = () => Number(process.hrtime.bigint() - baseNs);
  const ringFill = new RingFillPeak();
  session.source = {
    info: () => ({ source: 'live', label: hostname(), nowNs: nowNs() }),
    ringFill: () => ringFill.take(),
    stop: () => quit.abort('quit'),
  };
  try {
    await runLiveCapture(
      {
        ...live,
        ringFill,
        signal: quit.signal,
        onAttached: (names) => {
          baseNs = BigInt(session.state.captureHeader?.monotonicBaseNs ?? process.hrtime.bigint());
          options.log(`pageref top: attached ${names.length} programs (${names.join(', ')})`);
          timer = setInterval(() => session.tick(nowNs()), options.delaySec * 1000);
          session.enterScreen();
        },
      },
      session.state,
    );
    return 0;
  } catch (error) {
    session.restoreScreen();
    if (error instanceof BpfError) {
      options.log(`pageref top: ${error.message}${error.verifierLog ? ' (the verifier log follows)' : ''}`);
      if (error.verifierLog) options.log(error.verifierLog);
      return 1;
    }
    throw error;
  } finally {
    if (timer) clearInterval(timer);
    session.restoreScreen();
    stop.release();
  }
}

// --- JSON lines ------------------------------------------------------------------

/** One line of `pageref top --json` (the contract is in the README). */
export interface TopJson extends Omit<TopHeader, 'label' | 'paused' | 'uptimeSec' | 'stacksMode' | 'aggregated'> {
  /** The source's clock: seconds since the recording began. */
  time: number;
  file: string | null;
  stacksMode: string;
  aggregated: boolean;
  pages: (Omit<PageRow, 'pfn' | 'oldestHoldNs' | 'holds'> & { pfn: string; oldestHoldNs: number | null; holds: number })[];
  holders: (Omit<HolderRow, 'stackId' | 'examplePfn'> & { examplePfn: string })[];
  failures: (Omit<FailureRow, 'pfn' | 'heldNs'> & { pfn: string; heldNs: number | null })[];
  culprits: Culprit[];
}

export function topJson(pages: Snapshot, holders: Snapshot, failures: Snapshot): TopJson {
  const h = pages.header;
  const { label, paused: _paused, uptimeSec, ...header } = h;
  return {
    time: round(uptimeSec, 3),
    ...header,
    file: h.source === 'replay' ? label : null,
    intervalSec: round(h.intervalSec, 3),
    cpuPercent: h.cpuPercent === null ? null : round(h.cpuPercent, 1),
    pages: (pages.rows as PageRow[]).map(({ pfn, oldestHoldNs, ...rest }) => ({ pfn: hexPfn(pfn), ...rest, oldestHoldNs: oldestHoldNs >= 0 ? oldestHoldNs : null })),
    holders: (holders.rows as HolderRow[]).map(({ stackId: _id, examplePfn, ...rest }) => ({ ...rest, examplePfn: hexPfn(examplePfn) })),
    failures: (failures.rows as FailureRow[]).map(({ pfn, heldNs, ...rest }) => ({ pfn: hexPfn(pfn), ...rest, heldNs: heldNs >= 0 ? heldNs : null })),
    culprits: failures.view === 'failures' ? failures.culprits : [],
  };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
