/**
 * Synchronous work with a time limit. A decoder stuck in a loop cannot be
 * interrupted from its own thread, but V8 can stop the isolate: node:vm's
 * `timeout` arms a watchdog thread that terminates whatever JavaScript the
 * call is running, wherever that code was defined, and the call then throws.
 * Unlike a worker thread this needs no second bundle entry and no copy of
 * the bytes; what the stopped work allocated is garbage once it throws.
 */
import vm from 'node:vm';

export class BudgetExceededError extends Error {
  override name = 'BudgetExceededError';
}

const context = vm.createContext({ task: undefined as (() => unknown) | undefined });
const callTask = new vm.Script('task()');

/** `task()`, or BudgetExceededError once it has run for `milliseconds`. */
export function runWithin<T>(milliseconds: number, task: () => T): T {
  context.task = task;
  try {
    return callTask.runInContext(context, { timeout: milliseconds }) as T;
  } catch (error) {
    // Thrown from the context's realm, so it is not `instanceof Error` here: its code is what identifies it.
    if ((error as { code?: unknown } | null)?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') {
      throw new BudgetExceededError(`stopped after ${milliseconds} ms`);
    }
    throw error;
  } finally {
    context.task = undefined;
  }
}
