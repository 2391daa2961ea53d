// Which page_ref events take or drop references. A put does not say which
// get it undoes; here only totals are counted (pairing is the hold table's).

import { EventType } from '../record/event-types';

/** References taken (> 0) or dropped (< 0) by one page_ref event; 0 for none. */
export function referenceDelta(type: number, val: number, ret: number): number {
  switch (type) {
    case EventType.PageRefMod:
    case EventType.PageRefModAndTest:
    case EventType.PageRefModAndReturn:
      return val;
    case EventType.PageRefModUnless:
      // page_ref_add_unless: the add happened only when ret is true.
      return ret ? val : 0;
    default:
      // set, freeze and unfreeze replace the count: a new life, not a get or put.
      return 0;
  }
}
