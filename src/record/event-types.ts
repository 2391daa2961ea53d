// The event types of bpf/pageref.h, in the same order: the record's `type`
// byte indexes this list. test/layout.test.ts checks it against the addon.

export const EVENT_NAMES = [
  'page_ref_set',
  'page_ref_mod',
  'page_ref_mod_and_test',
  'page_ref_mod_and_return',
  'page_ref_mod_unless',
  'page_ref_freeze',
  'page_ref_unfreeze',
  'test_pages_isolated',
  'cma_alloc_start',
  'cma_alloc_finish',
  'cma_alloc_busy_retry',
  'cma_release',
] as const;

export type EventName = (typeof EVENT_NAMES)[number];

export const EVENT_SUBSYSTEMS: Record<EventName, string> = {
  page_ref_set: 'page_ref',
  page_ref_mod: 'page_ref',
  page_ref_mod_and_test: 'page_ref',
  page_ref_mod_and_return: 'page_ref',
  page_ref_mod_unless: 'page_ref',
  page_ref_freeze: 'page_ref',
  page_ref_unfreeze: 'page_ref',
  test_pages_isolated: 'page_isolation',
  cma_alloc_start: 'cma',
  cma_alloc_finish: 'cma',
  cma_alloc_busy_retry: 'cma',
  cma_release: 'cma',
};

export const EventType = {
  PageRefSet: 0,
  PageRefMod: 1,
  PageRefModAndTest: 2,
  PageRefModAndReturn: 3,
  PageRefModUnless: 4,
  PageRefFreeze: 5,
  PageRefUnfreeze: 6,
  TestPagesIsolated: 7,
  CmaAllocStart: 8,
  CmaAllocFinish: 9,
  CmaAllocBusyRetry: 10,
  CmaRelease: 11,
} as const;

export const EVENT_COUNT = EVENT_NAMES.length;

/** The page_ref family: records whose pfn/flags/mapping describe a page. */
export function isPageRefEvent(type: number): boolean {
  return type <= EventType.PageRefUnfreeze;
}

export function isCmaEvent(type: number): boolean {
  return type >= EventType.CmaAllocStart && type <= EventType.CmaRelease;
}

export function eventTypeOf(name: string): number {
  return (EVENT_NAMES as readonly string[]).indexOf(name);
}
