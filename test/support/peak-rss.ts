/**
 * How far the process's RSS rose above where it stood while some work ran.
 *
 * The kernel's own peak (`maxRSS`) is the process's peak since it started, so
 * after an earlier test peaked and its memory was handed back it says nothing
 * about the work at hand: a test reading it alone fails for what ran before it.
 * A worker thread samples RSS (process-wide) every millisecond instead, and
 * keeps sampling while the main thread is busy in a synchronous decoder; the
 * kernel's peak still counts when the work sets a new one, as a spike shorter
 * than a sample can only do then.
 */
import { Worker } from 'node:worker_threads';

const SAMPLER = `
const { workerData } = require('node:worker_threads');
const [stop, peak] = [new Int32Array(workerData, 0, 1), new Float64Array(workerData, 8, 1)];
while (Atomics.load(stop, 0) === 0) {
  peak[0] = Math.max(peak[0], process.memoryUsage.rss());
  Atomics.wait(stop, 0, 0, 1);
}
`;

/** Bytes; the baseline is read once the sampler runs, so its own thread is not counted. */
export async function rssGrowthDuring(work: () => Promise<void>): Promise<number> {
  const shared = new SharedArrayBuffer(16);
  const [stop, peak] = [new Int32Array(shared, 0, 1), new Float64Array(shared, 8, 1)];
  const sampler = new Worker(SAMPLER, { eval: true, workerData: shared });
  const exited = new Promise((resolve, reject) => sampler.once('exit', resolve).once('error', reject));
  await new Promise((resolve) => sampler.once('online', resolve));
  const before = process.memoryUsage.rss();
  const kernelPeakBefore = process.resourceUsage().maxRSS * 1024;
  try {
    await work();
  } finally {
    Atomics.store(stop, 0, 1);
    Atomics.notify(stop, 0);
    await exited;
  }
  const kernelPeakAfter = process.resourceUsage().maxRSS * 1024;
  return Math.max(peak[0], kernelPeakAfter > kernelPeakBefore ? kernelPeakAfter : 0) - before;
}
