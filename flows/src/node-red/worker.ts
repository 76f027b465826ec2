/**
 * A queue worker for the Coldtrace nodes: runs `work` every `pollMs` and on `kick()`, never two
 * at once; `stop()` waits for the run in progress, so a node closes without cutting a send.
 */
export interface Worker {
  kick(): void;
  stop(): Promise<void>;
}

export function startWorker(
  work: () => Promise<void>,
  pollMs: number,
  onError: (err: unknown) => void,
): Worker {
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  const run = () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = work()
      .catch(onError)
      .finally(() => {
        running = undefined;
        if (again && !stopped) {
          again = false;
          run();
        }
      });
  };
  const timer = setInterval(run, pollMs);
  return {
    kick: run,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
