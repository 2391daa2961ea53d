// Draws a snapshot: render(snapshot, size, viewState) -> lines, a pure
// function of its arguments (no terminal, no clock), so tests check screens
// as text. Columns take their content's width; when the terminal is too
// narrow the least important ones go first, and the last (the holder or
// stack) takes what is left. `columns: Infinity` (batch output) cuts nothing.

import { EVENT_NAMES } from '../record/event-types';
import { hexPfn } from '../report/capture-summary';
import type { Sampling } from '../report/capture-limits';
import { compareRows, FailureRow, HolderRow, PageRow, RowDetail, rowKey, Snapshot, SORT_KEYS, sortsAscending, TopHeader, TopRow, TopView } from './top-snapshot';
import type { TopFilter } from './top-filter';

export interface ScreenSize {
  columns: number;
  rows: number;
}

/** What the user chose on screen; the keys (top-keys.ts) change it. */
export interface ViewState {
  view: TopView;
  sort: string;
  reverse: boolean;
  filter: TopFilter;
  /** Index of the selected row on screen, -1 for none. */
  selected: number;
  /** Key (rowKey) of the expanded row, or null. */
  expanded: string | null;
  help: boolean;
  /** The filter prompt's text while it is open, else null. */
  prompt: string | null;
  /** One line for the user (a filter that does not parse), or "". */
  message: string;
  paused: boolean;
}

export interface RenderStyle {
  /** ANSI inverse video for the column titles and the selected row. */
  color: boolean;
  /** The key line at the bottom (interactive screens). */
  footer: boolean;
}

const PLAIN: RenderStyle = { color: false, footer: true };
const INVERSE = '\x1b[7m';
const RESET = '\x1b[0m';

const FOOTER = 'q quit  ? help  1 pages  2 holders  3 failures  s/</> sort  r reverse  / filter  p pause  \u2191\u2193 select  Enter expand';

const VIEW_TITLES: Record<TopView, string> = { pages: 'Pages', holders: 'Holders (by stack)', failures: 'Isolation failures' };

/** The holder or stack column keeps at least this much before other columns go: it is the answer. */
const FLEX_MIN = 24;

interface Column<R> {
  title: string;
  /** Sort key this column shows, if it sorts. */
  sort?: string;
  align: 'left' | 'right';
  /** Lower is more important; 0 is never dropped. */
  priority: number;
  /** The one column that takes the width left over (and is cut). */
  flex?: boolean;
  /** Widest it gets, when it is not the flexible column. */
  max?: number;
  cell(row: R): string;
}

const PAGE_COLUMNS: Column<PageRow>[] = [
  { title: 'PFN', sort: 'pfn', align: 'left', priority: 0, cell: (r) => hexPfn(r.pfn) },
  { title: 'REF', sort: 'ref', align: 'right', priority: 0, cell: (r) => String(r.refcount) },
  { title: 'MAP', sort: 'map', align: 'right', priority: 3, cell: (r) => (r.mapcount >= 0 ? String(r.mapcount) : '-') },
  { title: 'NET', sort: 'net', align: 'right', priority: 1, cell: (r) => count(r.net) },
  { title: 'GETS/s', sort: 'gets', align: 'right', priority: 2, cell: (r) => rate(r.getsPerSec) },
  { title: 'PUTS/s', sort: 'puts', align: 'right', priority: 2, cell: (r) => rate(r.putsPerSec) },
  { title: 'AGE', sort: 'age', align: 'right', priority: 1, cell: (r) => age(r.oldestHoldNs) },
  { title: 'EVENTS', sort: 'events', align: 'right', priority: 5, cell: (r) => count(r.events) },
  { title: 'MT', align: 'left', priority: 4, cell: (r) => r.migrateType ?? '-' },
  { title: 'FLAGS', align: 'left', priority: 6, max: 40, cell: (r) => (r.flags === null ? '-' : r.flags.join(',') || '-') },
  { title: 'TOP HOLDER', align: 'left', priority: 0, flex: true, cell: (r) => (r.holder ? `${r.holder.comm}[${r.holder.pid}] ${r.holder.frame} (${r.holder.kind})` : '-') },
];

const HOLDER_COLUMNS: Column<HolderRow>[] = [
  { title: 'KIND', sort: 'kind', align: 'left', priority: 0, cell: (r) => r.kind },
  { title: 'PAGES', sort: 'pages', align: 'right', priority: 0, cell: (r) => count(r.pages) },
  { title: 'REFS', sort: 'refs', align: 'right', priority: 1, cell: (r) => count(r.refs) },
  { title: 'PROCS', sort: 'procs', align: 'right', priority: 2, cell: (r) => count(r.processes) },
  { title: 'OLDEST', sort: 'age', align: 'right', priority: 1, cell: (r) => age(r.oldestHoldNs) },
  { title: 'EXAMPLE', align: 'left', priority: 3, cell: (r) => hexPfn(r.examplePfn) },
  { title: 'COMMS', align: 'left', priority: 4, max: 24, cell: (r) => r.comms.join(',') },
  { title: 'STACK (telling frame)', align: 'left', priority: 0, flex: true, cell: (r) => r.frame },
];

const FAILURE_COLUMNS: Column<FailureRow>[] = [
  { title: 'PFN', sort: 'pfn', align: 'left', priority: 0, cell: (r) => hexPfn(r.pfn) },
  { title: 'FAILS', sort: 'fails', align: 'right', priority: 0, cell: (r) => count(r.failures) },
  { title: 'RETRIES', sort: 'retries', align: 'right', priority: 3, cell: (r) => count(r.busyRetries) },
  { title: 'REF', sort: 'ref', align: 'right', priority: 2, cell: (r) => (r.count >= 0 ? String(r.count) : '-') },
  { title: 'HELD', sort: 'held', align: 'right', priority: 1, cell: (r) => age(r.heldNs) },
  { title: 'LAST', sort: 'last', align: 'right', priority: 4, cell: (r) => `${age(r.lastFailureAgoNs)} ago` },
  { title: 'RELEASED BY', align: 'left', priority: 5, max: 40, cell: (r) => (r.releaser ? `${r.releaser.comm}[${r.releaser.pid}] ${r.releaser.frame}` : '-') },
  { title: 'CULPRIT', align: 'left', priority: 0, flex: true, cell: (r) => (r.culprit ? `${r.culprit.comm}[${r.culprit.pid}] ${r.culprit.frame} (${r.culprit.kind})` : '-') },
];

export function render(snapshot: Snapshot, size: ScreenSize, view: ViewState, style: RenderStyle = PLAIN): string[] {
  const width = size.columns;
  const out: string[] = [...headerLines(snapshot.header, width), statusLine(snapshot, view, width)];
  const footer = style.footer ? [footerLine(view, width)] : [];
  const room = size.rows - out.length - footer.length;
  const body = view.help ? helpLines(width) : tableLines(snapshot, view, width, room, style);
  out.push(...body.slice(0, Math.max(0, room)));
  if (Number.isFinite(size.rows)) while (out.length < size.rows - footer.length) out.push('');
  out.push(...footer);
  return out.map((line) => (line.includes('\x1b') ? line : cut(line, width)));
}

/** The rows in the order the view state asks for (the snapshot may come from an earlier sort). */
export function orderedRows(snapshot: Snapshot, view: ViewState): TopRow[] {
  const rows: TopRow[] = [...snapshot.rows];
  if (view.view !== snapshot.view || !SORT_KEYS[snapshot.view].includes(view.sort)) return rows;
  return rows.sort(compareRows(snapshot.view, view.sort, view.reverse));
}

// --- header -----------------------------------------------------------------

const SHORT_EVENT: Record<string, string> = {
  test_pages_isolated: 'isolated',
  cma_alloc_start: 'cma_start',
  cma_alloc_finish: 'cma_finish',
  cma_alloc_busy_retry: 'cma_retry',
  cma_release: 'cma_release',
};

function headerLines(h: TopHeader, width: number): string[] {
  const where =
    h.source === 'live'
      ? `live on ${h.label}`
      : `replay ${h.label} (${h.speed === 0 ? 'max speed' : `x${h.speed ?? 1}`})${h.ended ? `, ${h.ended}` : ''}`;
  const first = [`pageref top - ${where}`, `kernel ${h.kernel || '?'}`, `up ${clock(h.uptimeSec)}`, `cpu ${h.cpuPercent === null ? 'n/a' : `${h.cpuPercent.toFixed(1)}%`}`];
  if (h.paused) first.push('PAUSED');
  const rates = EVENT_NAMES.filter((name) => h.eventsPerSec[name] > 0).map((name) => `${SHORT_EVENT[name] ?? name.replace(/^page_ref_/, '')} ${rate(h.eventsPerSec[name])}`);
  if (h.aggregatedPerSec > 0) rates.push(`summed in kernel ${rate(h.aggregatedPerSec)}`);
  const total = EVENT_NAMES.reduce((sum, name) => sum + h.eventsPerSec[name], 0) + h.aggregatedPerSec;
  const events = [`Events/s ${rate(total)}${rates.length > 0 ? ':' : ''}`, ...rates];
  const third = [
    `Dropped ${count(h.dropped)} (${rate(h.droppedPerSec)}/s)${h.dropped > 0 ? ' !' : ''}`,
    ...(h.stackLost > 0 ? [`Stacks lost ${count(h.stackLost)} !`] : []),
    ...(h.sampledOut > 0 ? [`Sampled out ${count(h.sampledOut)}`] : []),
    ...(h.aggregateOverflow > 0 ? [`Overflow ${count(h.aggregateOverflow)} (pfns without a slot) !`] : []),
    `Isolation failures ${count(h.isolationFailures)} (${rate(h.isolationFailuresPerSec)}/s)`,
    `CMA retries ${count(h.cmaRetries)} (${rate(h.cmaRetriesPerSec)}/s)`,
    `failed allocs ${count(h.failedAllocations)}`,
    `Pfns ${count(h.pfns)}${h.evictedPfns + h.evictedHoldPfns + h.evictedRatePfns > 0 ? ` evicted ${count(h.evictedPfns)}/${count(h.evictedHoldPfns)} held/${count(h.evictedRatePfns)} rates (max ${count(h.maxPfns)}) !` : ''}`,
    `Ring ${h.ringFill === null ? 'n/a' : fillPercent(h.ringFill)}`,
    `stacks ${h.stacksMode}${h.aggregated ? ', aggregated' : ''}`,
    ...samplingNote(h.sampling),
  ];
  return [...flow(first, width, '  '), ...flow(events, width, '  '), ...flow(third, width, '  ')];
}

/** "sampled: 1 in 64 pfns, 1 in 8 events", or nothing when the source keeps everything. */
function samplingNote(sampling: Sampling): string[] {
  const kept = [sampling.pfn > 1 ? `1 in ${sampling.pfn} pfns` : '', sampling.events > 1 ? `1 in ${sampling.events} events` : ''].filter((part) => part !== '');
  return kept.length > 0 ? [`sampled: ${kept.join(', ')}`] : [];
}

/** Joins parts with `gap`, starting a new line where the next part would not fit. */
function flow(parts: string[], width: number, gap: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const part of parts) {
    if (line !== '' && line.length + gap.length + part.length > width) {
      lines.push(line);
      line = `  ${part}`;
    } else {
      line = line === '' ? part : `${line}${gap}${part}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

function statusLine(s: Snapshot, view: ViewState, width: number): string {
  const arrow = (view.view === s.view ? view.reverse : s.reverse) !== sortsAscending(view.view === s.view ? view.sort : s.sort) ? '\u2191' : '\u2193';
  const sort = view.view === s.view ? view.sort : s.sort;
  const parts = [
    `${VIEW_TITLES[s.view]}: ${s.rows.length} of ${count(s.matching)}`,
    `sort ${sort}${arrow}`,
    `filter ${s.filter.text === '' ? 'none' : s.filter.text}`,
  ];
  if (view.message) parts.push(view.message);
  return flow(parts, width, '  ').join(' ');
}

function footerLine(view: ViewState, width: number): string {
  if (view.prompt !== null) return `Filter: ${view.prompt}_   (Enter apply, Esc cancel; e.g. 0x17800-0x17c00 vmsplice)`;
  return cut(FOOTER, width);
}

// --- table ------------------------------------------------------------------

function tableLines(s: Snapshot, view: ViewState, width: number, room: number, style: RenderStyle): string[] {
  const lines: string[] = [];
  if (s.view === 'failures' && s.culprits.length > 0) {
    const shown = s.culprits.slice(0, 3);
    lines.push(`Culprits: ${shown.map((c) => `${c.frame} (${c.kind}) ${c.pages} page${c.pages === 1 ? '' : 's'}, ${c.failures} failure${c.failures === 1 ? '' : 's'}`).join('; ')}${s.culprits.length > 3 ? `; ${s.culprits.length - 3} more` : ''}`);
  }
  const rows = orderedRows(s, view);
  const sort = view.view === s.view ? view.sort : s.sort;
  const reverse = view.view === s.view ? view.reverse : s.reverse;
  const table =
    s.view === 'pages'
      ? formatTable(PAGE_COLUMNS, rows as PageRow[], width, sort, reverse)
      : s.view === 'holders'
        ? formatTable(HOLDER_COLUMNS, rows as HolderRow[], width, sort, reverse)
        : formatTable(FAILURE_COLUMNS, rows as FailureRow[], width, sort, reverse);
  lines.push(style.color ? `${INVERSE}${pad(table.title, width)}${RESET}` : table.title);
  if (rows.length === 0) lines.push(emptyText(s));
  // The selected row stays on screen: rows scroll when it is below the room left.
  const tableRoom = room - lines.length;
  const selected = Math.min(view.selected, rows.length - 1);
  const detail = s.detail ? detailLines(s.detail, width) : [];
  let first = 0;
  if (selected >= 0 && Number.isFinite(tableRoom) && selected >= tableRoom) first = selected - tableRoom + 1;
  for (let i = first; i < rows.length; i++) {
    const text = table.rows[i];
    lines.push(style.color && i === selected ? `${INVERSE}${pad(text, width)}${RESET}` : text);
    if (view.expanded !== null && view.expanded === rowKey(s.view, rows[i])) lines.push(...detail);
  }
  return lines;
}

function emptyText(s: Snapshot): string {
  if (s.view === 'holders' && s.header.aggregated) return '  (no holders: --aggregate records no page_ref events, only per-pfn sums)';
  if (s.view === 'holders' && s.header.stacksMode === 'none') return '  (no stacks recorded: holders are grouped by stack)';
  if (s.view === 'failures') return '  (no isolation has failed)';
  return s.filter.text ? '  (nothing matches the filter)' : '  (nothing yet)';
}

function formatTable<R>(columns: Column<R>[], rows: R[], width: number, sort: string, reverse: boolean): { title: string; rows: string[] } {
  const arrow = (c: Column<R>) => (c.sort === sort ? (reverse !== sortsAscending(sort) ? '\u2191' : '\u2193') : '');
  const titles = columns.map((c) => c.title + arrow(c));
  const cells = rows.map((row) => columns.map((c) => c.cell(row)));
  const widths = columns.map((c, i) => {
    const natural = Math.max(titles[i].length, ...cells.map((r) => r[i].length));
    return c.flex || c.max === undefined ? natural : Math.min(natural, c.max);
  });
  // Drop the least important columns until the fixed ones and FLEX_MIN columns of the flexible one fit.
  const kept = columns.map(() => true);
  const used = () => columns.reduce((sum, c, i) => sum + (kept[i] ? (c.flex ? Math.min(widths[i], FLEX_MIN) : widths[i]) + 1 : 0), -1);
  const order = columns.map((c, i) => ({ c, i })).filter(({ c }) => c.priority > 0).sort((a, b) => b.c.priority - a.c.priority || b.i - a.i);
  for (const { i } of order) {
    if (used() <= width) break;
    kept[i] = false;
  }
  const fixed = columns.reduce((sum, c, i) => sum + (kept[i] && !c.flex ? widths[i] + 1 : 0), 0);
  const line = (values: string[]) =>
    columns
      .map((c, i) => {
        if (!kept[i]) return null;
        if (c.flex) return Number.isFinite(width) ? cut(values[i], Math.max(1, width - fixed)) : values[i];
        const value = cut(values[i], widths[i]);
        return c.align === 'right' ? value.padStart(widths[i]) : value.padEnd(widths[i]);
      })
      .filter((v): v is string => v !== null)
      .join(' ')
      .trimEnd();
  return { title: line(titles), rows: cells.map(line) };
}

function detailLines(d: RowDetail, width: number): string[] {
  const out: string[] = [];
  const frames = (stack: string[]) => (stack.length > 0 ? stack.map((f) => `        ${f}`) : ['        (no stack)']);
  if (d.kind === 'page') {
    out.push(`    ${hexPfn(d.pfn)}: ${d.holds.length} outstanding hold${d.holds.length === 1 ? '' : 's'}${d.untrackedPuts > 0 ? `, ${d.untrackedPuts} references dropped that were taken before tracing` : ''}`);
    for (const h of d.holds) {
      out.push(`      ${h.kind} ${h.comm}[${h.pid}] ${h.refs} ref${h.refs === 1 ? '' : 's'}, held ${age(h.heldNs)} (${h.certain ? 'certain' : 'inferred'})`);
      out.push(...frames(h.stack));
    }
    out.push(`    recent events (newest first${d.history.length === 0 ? ': none since the page came on screen' : ''}):`);
    for (const e of d.history) out.push(`      ${age(e.agoNs).padStart(7)} ago  ${e.event} ${e.val >= 0 ? '+' : ''}${e.val} -> ${e.count}  ${e.comm}[${e.pid}]  ${e.frame}`);
  } else if (d.kind === 'stack') {
    out.push(`    stack ${d.stackId < 0 ? '(none)' : d.stackId}, innermost first; taken by ${d.comms.join(', ') || '?'}; pages ${d.pfns.map(hexPfn).join(' ')}`);
    out.push(...frames(d.stack));
  } else {
    out.push(`    ${hexPfn(d.pfn)}: holders at the failures`);
    for (const h of d.holders) {
      out.push(`      ${h.kind} ${h.comm}[${h.pid}] ${h.refs} ref${h.refs === 1 ? '' : 's'}, held ${age(h.heldNs)} (${h.certain ? 'certain' : 'inferred'})`);
      out.push(...frames(h.stack));
    }
    out.push(`    released by${d.releasers.length === 0 ? ': nobody yet' : ''}`);
    for (const r of d.releasers) {
      out.push(`      ${r.comm}[${r.pid}] ${r.refs} ref${r.refs === 1 ? '' : 's'}, ${age(r.afterNs)} after the first failure`);
      out.push(...frames(r.stack));
    }
  }
  return out.map((line) => cut(line, width));
}

function helpLines(width: number): string[] {
  return [
    'Keys',
    '  q, Ctrl-C      quit (the terminal is restored)',
    '  1 2 3, v, Tab  views: pages, holders (grouped by stack), failures (busy pages and culprits)',
    '  s  < >         next sort column; sort column left / right',
    '  r              reverse the sort',
    '  / or f         filter: pfn ranges (0x17800-0x17c00), pfns, comms; empty clears',
    '  p, space       pause the refresh (keys still redraw from the current state)',
    '  Up Down PgUp PgDn Home End, j k   select a row',
    '  Enter          expand the selected row: full stacks and recent events; Enter or Esc closes',
    '  ?              this help; any key closes it',
    '',
    'Pages: REF refcount and MAP mapcount at the last event; NET references taken minus dropped;',
    '  AGE of the oldest reference still held; MT migrate type of the pageblock; FLAGS page flags;',
    '  TOP HOLDER the most telling outstanding reference (pins first): comm[pid], frame, kind.',
    'Holders: outstanding references grouped by the stack that took them.',
    'Failures: pages isolation could not take, what held them (CULPRIT) and what let go.',
  ].map((line) => cut(line, width));
}

// --- formatting ---------------------------------------------------------------

function cut(text: string, width: number): string {
  return Number.isFinite(width) && text.length > width ? text.slice(0, Math.max(0, width)) : text;
}

function pad(text: string, width: number): string {
  return Number.isFinite(width) ? cut(text, width).padEnd(width) : text;
}

// The formatters below round a value in each unit in turn and use the first it
// stays under the limit in, so 99,999.7 reads 100k (not 100000) and 999.7 ms 1.0s.

export function count(n: number): string {
  const whole = Math.round(n);
  if (Math.abs(whole) < 100_000) return String(whole);
  const thousands = Math.round(n / 1000);
  if (Math.abs(thousands) < 10_000) return `${thousands}k`;
  return `${Math.round(n / 1_000_000)}M`;
}

export function rate(n: number): string {
  if (n === 0) return '0';
  // A rare event (one CMA allocation in half a minute) must not read as 0.0.
  if (Math.abs(n) < 0.1) return n.toPrecision(1);
  const tenths = Math.round(n * 10);
  if (Math.abs(tenths) < 100) return (tenths / 10).toFixed(1);
  return count(n);
}

/** A duration in ns, short: 850ms, 12.3s, 4m05s, 2h03m; "-" for none (negative). */
export function age(ns: number): string {
  if (!(ns >= 0)) return '-';
  const ms = Math.round(ns / 1e6);
  if (ms < 1000) return `${ms}ms`;
  const tenths = Math.round(ns / 1e8);
  if (tenths < 600) return `${(tenths / 10).toFixed(1)}s`;
  const s = Math.round(ns / 1e9);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  const m = Math.round(ns / 6e10);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function clock(seconds: number): string {
  const s = Math.floor(seconds);
  return `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/** A ring buffer fill (0 to 1) as a percentage: a few pending records must not read as 0%, nor a nearly full ring as 100%. */
export function fillPercent(fill: number): string {
  const percent = fill * 100;
  if (percent === 0) return '0%';
  if (percent < 0.1) return '<0.1%';
  const tenths = Math.round(percent * 10);
  if (tenths < 100) return `${(tenths / 10).toFixed(1)}%`;
  if (percent < 100) return `${Math.min(99, Math.round(percent))}%`;
  return '100%';
}
