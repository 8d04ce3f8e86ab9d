/** Runs a check now and then every `intervalMs`, never two at once, and hands each result to `report`. */

export interface HealthMonitor {
  /** Runs a check now (unless one is running); resolves when it and its report are done. */
  runNow(): Promise<void>;
  stop(): void;
}

export interface HealthMonitorOptions<R> {
  intervalMs: number;
  check(): Promise<R>;
  report(result: R): Promise<void>;
  /** A check or report that failed (the monitor goes on). */
  onError?(err: unknown): void;
}

/** Starts the monitor; the first check runs at once. The timer does not keep the process alive. */
export function startHealthMonitor<R>(options: HealthMonitorOptions<R>): HealthMonitor {
  let running: Promise<void> | undefined;
  let stopped = false;
  const runNow = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    running ??= (async () => {
      try {
        const result = await options.check();
        if (!stopped) await options.report(result);
      } catch (err) {
        options.onError?.(err);
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
  const timer = setInterval(() => void runNow(), options.intervalMs);
  timer.unref();
  void runNow();
  return {
    runNow,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
