/**
 * A training worker that fails on purpose, for the data-parallel tests: rank
 * 1 fails as the module URL's `fault` parameter says, every other rank is
 * the real worker.
 * 'throw' throws before it trains (rank 0 then waits for it at the first
 * step's barrier); 'exit' trains and exits when it reports its first epoch,
 * between two steps of the next.
 */
import { parentPort, workerData, type Transferable } from 'node:worker_threads';

const { rank } = workerData as { rank: number };
const fault = new URL(import.meta.url).searchParams.get('fault');
if (rank === 1 && fault === 'throw') throw new Error('injected failure in rank 1');
if (rank === 1 && fault === 'exit') {
  const port = parentPort!;
  const post = port.postMessage.bind(port);
  port.postMessage = (message: { type: string }, transfer?: readonly Transferable[]) => {
    if (message.type === 'epoch') process.exit(3);
    post(message, transfer);
  };
}
await import('../../functions/lib/training/train-worker.ts');
