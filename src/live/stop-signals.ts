// SIGINT and SIGTERM stop a live session cleanly instead of killing the
// process: they abort the returned signal, and the session finishes its output.

export interface StopSignals {
  /** Aborted with the name of the first SIGINT or SIGTERM. */
  signal: AbortSignal;
  /** Gives SIGINT and SIGTERM back to their previous handling. */
  release(): void;
}

export function stopOnSignals(): StopSignals {
  const stop = new AbortController();
  const onSignal = (name: NodeJS.Signals) => stop.abort(name);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: stop.signal,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
