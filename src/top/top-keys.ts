// What each key does to the view state: a pure function, so the keys are
// tested without a terminal. The session redraws, or takes a new snapshot
// first when the rows themselves change (view, sort, filter, expansion).

import { UsageError } from '../cli/arguments';
import { parseFilter } from './top-filter';
import type { ViewState } from './top-render';
import { DEFAULT_SORT, SORT_KEYS, TOP_VIEWS, TopView } from './top-snapshot';

/** A key as readline.emitKeypressEvents reports it. */
export interface KeyPress {
  name?: string;
  sequence?: string;
  ctrl?: boolean;
  meta?: boolean;
  shift?: boolean;
}

/** none: nothing changed; redraw: the same snapshot; snapshot: take a new one, then draw. */
export type KeyAction = 'none' | 'redraw' | 'snapshot' | 'quit';

export function initialView(view: TopView = 'pages', sort?: string): ViewState {
  return {
    view,
    sort: sort && SORT_KEYS[view].includes(sort) ? sort : DEFAULT_SORT[view],
    reverse: false,
    filter: { ranges: [], comms: [], text: '' },
    selected: 0,
    expanded: null,
    help: false,
    prompt: null,
    message: '',
    paused: false,
  };
}

/**
 * `rowKeys`: the keys of the rows on screen, in screen order (for Enter);
 * `page`: rows a page key moves by.
 */
export function applyKey(state: ViewState, key: KeyPress, rowKeys: readonly string[], page = 10): { view: ViewState; action: KeyAction } {
  const s: ViewState = { ...state, message: '' };
  if (key.ctrl && key.name === 'c') return { view: s, action: 'quit' };
  if (state.prompt !== null) return promptKey(s, key);
  if (state.help) {
    if (key.name === 'q') return { view: s, action: 'quit' };
    return { view: { ...s, help: false }, action: 'redraw' };
  }
  const last = rowKeys.length - 1;
  const select = (index: number) => ({ view: { ...s, selected: Math.max(0, Math.min(last, index)) }, action: 'redraw' as const });
  const character = key.sequence ?? '';
  switch (key.name) {
    case 'q':
      return { view: s, action: 'quit' };
    case 'up':
    case 'k':
      return select(s.selected - 1);
    case 'down':
    case 'j':
      return select(s.selected + 1);
    case 'pageup':
      return select(s.selected - page);
    case 'pagedown':
      return select(s.selected + page);
    case 'home':
      return select(0);
    case 'end':
      return select(last);
    case 'return':
    case 'enter': {
      const rowKey = rowKeys[Math.min(s.selected, last)];
      if (rowKey === undefined) return { view: s, action: 'none' };
      return { view: { ...s, expanded: s.expanded === rowKey ? null : rowKey }, action: 'snapshot' };
    }
    case 'escape':
      return s.expanded !== null ? { view: { ...s, expanded: null }, action: 'redraw' } : { view: s, action: 'none' };
    case 'tab':
      return switchView(s, TOP_VIEWS[(TOP_VIEWS.indexOf(s.view) + (key.shift ? TOP_VIEWS.length - 1 : 1)) % TOP_VIEWS.length]);
    case 'space':
      return { view: { ...s, paused: !s.paused }, action: 'redraw' };
  }
  switch (character) {
    case '?':
    case 'h':
      return { view: { ...s, help: true }, action: 'redraw' };
    case '1':
    case '2':
    case '3':
      return switchView(s, TOP_VIEWS[Number(character) - 1]);
    case 'v':
      return switchView(s, TOP_VIEWS[(TOP_VIEWS.indexOf(s.view) + 1) % TOP_VIEWS.length]);
    case 's':
    case '>':
      return sortBy(s, 1);
    case '<':
      return sortBy(s, -1);
    case 'r':
    case 'R':
      return { view: { ...s, reverse: !s.reverse, selected: 0 }, action: 'snapshot' };
    case '/':
    case 'f':
      return { view: { ...s, prompt: s.filter.text }, action: 'redraw' };
    case 'p':
      return { view: { ...s, paused: !s.paused }, action: 'redraw' };
  }
  return { view: state, action: 'none' };
}

function switchView(s: ViewState, view: TopView): { view: ViewState; action: KeyAction } {
  if (view === s.view) return { view: s, action: 'none' };
  return { view: { ...s, view, sort: DEFAULT_SORT[view], reverse: false, selected: 0, expanded: null }, action: 'snapshot' };
}

function sortBy(s: ViewState, step: number): { view: ViewState; action: KeyAction } {
  const keys = SORT_KEYS[s.view];
  const at = keys.indexOf(s.sort);
  return { view: { ...s, sort: keys[(at + step + keys.length) % keys.length], selected: 0 }, action: 'snapshot' };
}

function promptKey(s: ViewState, key: KeyPress): { view: ViewState; action: KeyAction } {
  const text = s.prompt ?? '';
  switch (key.name) {
    case 'return':
    case 'enter':
      try {
        return { view: { ...s, prompt: null, filter: parseFilter(text), selected: 0, expanded: null }, action: 'snapshot' };
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        return { view: { ...s, message: error.message }, action: 'redraw' };
      }
    case 'escape':
      return { view: { ...s, prompt: null }, action: 'redraw' };
    case 'backspace':
      return { view: { ...s, prompt: text.slice(0, -1) }, action: 'redraw' };
  }
  if (key.ctrl && key.name === 'u') return { view: { ...s, prompt: '' }, action: 'redraw' };
  const character = key.sequence ?? '';
  if (character.length === 1 && character >= ' ' && character <= '~' && !key.ctrl && !key.meta) {
    return { view: { ...s, prompt: text + character }, action: 'redraw' };
  }
  return { view: s, action: 'none' };
}
