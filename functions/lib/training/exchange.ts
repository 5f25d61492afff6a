/**
 * The shared memory a data-parallel run's replicas (replica.ts) meet in: a
 * barrier, each replica's gradients and batch score for the step, and an
 * abort flag the coordinating thread (data-parallel.ts) raises when a
 * replica fails, so the others wake from the barrier and stop instead of
 * waiting for a step that will never come.
 *
 * Slots alternate by step parity: a replica may write step t+1's gradients
 * while a slower one still reads step t's, but it cannot reach step t+2
 * before every replica has arrived at step t+1's barrier, which each does
 * only after it has finished reading step t. So one barrier a step is enough.
 */

/** Int32 slots of the control array. */
const ARRIVED = 0;
const GENERATION = 1;
const ABORTED = 2;
const CONTROL_SLOTS = 3;

/**
 * Checks of the generation before a replica sleeps at the barrier (~10 µs):
 * on free cores the last replica usually arrives within that, and a futex
 * sleep and wake-up cost more than the wait.
 */
const SPINS = 2000;

/** Loss and correct count per replica and step. */
const SCORE_FIELDS = 2;

export interface ExchangeBuffers {
  threads: number;
  /** Float32 elements of one replica's gradients: every trainable weight, in the model's order. */
  params: number;
  control: SharedArrayBuffer;
  gradients: SharedArrayBuffer;
  scores: SharedArrayBuffer;
}

export function exchangeBuffers(threads: number, params: number): ExchangeBuffers {
  return {
    threads,
    params,
    control: new SharedArrayBuffer(CONTROL_SLOTS * Int32Array.BYTES_PER_ELEMENT),
    gradients: new SharedArrayBuffer(2 * threads * params * Float32Array.BYTES_PER_ELEMENT),
    scores: new SharedArrayBuffer(2 * threads * SCORE_FIELDS * Float64Array.BYTES_PER_ELEMENT),
  };
}

export class ExchangeAbortedError extends Error {
  override name = 'ExchangeAbortedError';
}

/** Raises the abort flag and wakes every replica waiting at the barrier. */
export function abortExchange(buffers: ExchangeBuffers): void {
  const control = new Int32Array(buffers.control);
  Atomics.store(control, ABORTED, 1);
  Atomics.add(control, GENERATION, 1);
  Atomics.notify(control, GENERATION);
}

/** One replica's view of the exchange. */
export class Exchange {
  private readonly control: Int32Array;
  private readonly gradients: Float32Array;
  private readonly scores: Float64Array;

  constructor(
    private readonly buffers: ExchangeBuffers,
    private readonly rank: number,
  ) {
    this.control = new Int32Array(buffers.control);
    this.gradients = new Float32Array(buffers.gradients);
    this.scores = new Float64Array(buffers.scores);
  }

  /** Where `rank`'s gradients for `step` start in the gradients array. */
  private slot(step: number, rank: number): number {
    return ((step % 2) * this.buffers.threads + rank) * this.buffers.params;
  }

  /** This replica's gradient slot for `step`, to write into. */
  ownGradients(step: number): Float32Array {
    const start = this.slot(step, this.rank);
    return this.gradients.subarray(start, start + this.buffers.params);
  }

  putScore(step: number, loss: number, correct: number): void {
    const at = ((step % 2) * this.buffers.threads + this.rank) * SCORE_FIELDS;
    this.scores[at] = loss;
    this.scores[at + 1] = correct;
  }

  /** Every replica's gradients for `step`, by rank. */
  allGradients(step: number): Float32Array[] {
    return Array.from({ length: this.buffers.threads }, (_, rank) => {
      const start = this.slot(step, rank);
      return this.gradients.subarray(start, start + this.buffers.params);
    });
  }

  /** Every replica's loss and correct count for `step`, by rank. */
  allScores(step: number): { loss: number; correct: number }[] {
    return Array.from({ length: this.buffers.threads }, (_, rank) => {
      const at = ((step % 2) * this.buffers.threads + rank) * SCORE_FIELDS;
      return { loss: this.scores[at]!, correct: this.scores[at + 1]! };
    });
  }

  /**
   * Waits until every replica has arrived (a generation-counting barrier);
   * throws ExchangeAbortedError once the run has been aborted.
   */
  barrier(): void {
    const control = this.control;
    const generation = Atomics.load(control, GENERATION);
    if (Atomics.add(control, ARRIVED, 1) === this.buffers.threads - 1) {
      Atomics.store(control, ARRIVED, 0);
      Atomics.add(control, GENERATION, 1);
      Atomics.notify(control, GENERATION);
    } else {
      for (let spin = 0; spin < SPINS && Atomics.load(control, GENERATION) === generation; spin++);
      while (Atomics.load(control, GENERATION) === generation) Atomics.wait(control, GENERATION, generation);
    }
    if (Atomics.load(control, ABORTED) !== 0) throw new ExchangeAbortedError('the run was aborted');
  }
}
