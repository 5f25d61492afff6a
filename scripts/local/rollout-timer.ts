/**
 * `npm start`'s rollout schedule: the primary applies the rollout policy
 * (`#lib/rollout/apply`) every ROLLOUT_INTERVAL_SECONDS, as the cloud's
 * rollout function does on its schedule. There are no alarms locally. One run
 * at a time: the next is scheduled when the last ends, so a slow read of many
 * captures never stacks runs up. A failed run is logged and the next one
 * tries again; it never stops the server.
 */
import type { Logger } from '#lib/log';
import { applyRollout } from '#lib/rollout/apply';
import type { RolloutPolicy } from '#lib/rollout/decide';
import type { ObjectStore } from '#lib/storage/objects';

export interface RolloutTimer {
  /** Cancels the next run and waits for the current one, if any. */
  stop(): Promise<void>;
}

export function startRolloutTimer(options: {
  objects: ObjectStore;
  policy: RolloutPolicy;
  intervalSeconds: number;
  logger: Logger;
}): RolloutTimer {
  const log = options.logger;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = applyRollout({ objects: options.objects, alarms: async () => [], policy: options.policy, logger: log })
        .then(
          () => undefined,
          (error: unknown) => log.error('rollout: the run failed; the next one tries again', { error }),
        )
        .finally(schedule);
    }, options.intervalSeconds * 1000);
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
