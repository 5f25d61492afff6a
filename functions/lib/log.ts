/**
 * One structured JSON logger. Each line is a single JSON object on stderr so
 * stdout stays free for a command's result (train prints its JSON line there).
 */
import { readLogLevel, type LogLevel } from './config.ts';

export type LogFields = Record<string, unknown>;

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /**
   * One `metrics` line at level info whatever LOG_LEVEL says: a quieter log
   * must not silence the metrics alarms are built on (functions/lib/metrics.ts).
   */
  metrics(document: LogFields): void;
  child(fields: LogFields): Logger;
}

function serialise(value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack };
  }
  return value;
}

export function createLogger(
  base: LogFields = { service: 'digitnet' },
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  minLevel: LogLevel = readLogLevel(),
): Logger {
  const threshold = LEVELS[minLevel];
  const line = (level: LogLevel, message: string, fields: LogFields): void => {
    const entry: LogFields = { level, time: new Date().toISOString(), ...base, message };
    for (const [key, value] of Object.entries(fields)) entry[key] = serialise(value);
    write(JSON.stringify(entry));
  };
  const emit = (level: LogLevel, message: string, fields: LogFields = {}): void => {
    if (LEVELS[level] >= threshold) line(level, message, fields);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    metrics: (document) => line('info', 'metrics', document),
    child: (fields) => createLogger({ ...base, ...fields }, write, minLevel),
  };
}

/** A bad LOG_LEVEL throws a ConfigError here, at import: before anything runs. */
export const logger = createLogger();
