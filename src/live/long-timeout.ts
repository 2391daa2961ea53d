// setTimeout for any delay: Node takes at most 2^31 - 1 ms and fires a longer
// timeout after 1 ms instead (with a TimeoutOverflowWarning), so `record -d`
// of 25 days or more would stop at once. Longer waits are taken in steps.

const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export interface LongTimeout {
  clear(): void;
}

/** Calls `fire` once, `ms` milliseconds from now, whatever `ms` is; clear() cancels it. */
export function setLongTimeout(fire: () => void, ms: number): LongTimeout {
  const deadline = Date.now() + ms;
  let timer: NodeJS.Timeout;
  const step = (left: number) => {
    timer = setTimeout(() => {
      const rest = deadline - Date.now();
      if (rest > 0) step(rest);
      else fire();
    }, Math.min(Math.max(left, 0), MAX_TIMEOUT_MS));
  };
  step(ms);
  return { clear: () => clearTimeout(timer) };
}
