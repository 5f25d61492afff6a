/**
 * Progress of a long job: a redrawn bar when a person watches a terminal, JSON
 * lines (one per event) when a machine reads the output.
 */
export interface ProgressSink {
  update(fraction: number, label: string, fields?: Record<string, unknown>): void;
  /** A line that stays: an epoch summary, a phase finished. */
  note(event: string, fields: Record<string, unknown>): void;
  done(): void;
}

interface Stream {
  write(chunk: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

const BAR_WIDTH = 30;

function bar(fraction: number): string {
  const clamped = Math.min(1, Math.max(0, fraction));
  const filled = Math.round(clamped * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${(clamped * 100).toFixed(0).padStart(3)}%`;
}

function summary(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : String(v)}`)
    .join(' ');
}

/** Bar on `terminal` when it is a TTY; otherwise JSON lines on `lines`. */
export function createProgress(terminal: Stream = process.stderr, lines: Stream = process.stdout): ProgressSink {
  if (terminal.isTTY) {
    let drawn = false;
    return {
      update(fraction, label, fields = {}) {
        const text = `${bar(fraction)} ${label} ${summary(fields)}`;
        terminal.write(`\r${text.slice(0, (terminal.columns ?? 100) - 1)}\x1b[K`);
        drawn = true;
      },
      note(event, fields) {
        terminal.write(`${drawn ? '\r\x1b[K' : ''}${event}: ${summary(fields)}\n`);
        drawn = false;
      },
      done() {
        if (drawn) terminal.write('\n');
        drawn = false;
      },
    };
  }
  return {
    update(fraction, label, fields = {}) {
      lines.write(
        `${JSON.stringify({ event: 'progress', label, fraction: Number(fraction.toFixed(4)), ...fields })}\n`,
      );
    },
    note(event, fields) {
      lines.write(`${JSON.stringify({ event, ...fields })}\n`);
    },
    done() {},
  };
}
