/**
 * How every command-line entry point ends: the exit code its main returns, or
 * for a thrown error one line on stderr — a stack only when the error was not
 * foreseen, since then it is a bug to report rather than a thing to fix.
 */
import { ConfigError } from '#lib/errors';

/** Exit code of a command used wrongly (unknown flag, missing argument), as distinct from one that failed. */
export const USAGE_EXIT = 2;

/** A failure the user can act on; its message says how. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

function isUsageError(error: unknown): boolean {
  // node:util parseArgs throws TypeErrors with these codes for unknown flags and missing values.
  return error instanceof TypeError && String((error as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS_');
}

/** One line for a foreseen error with its exit code; the stack and exit code 1 for anything else. */
export function describeFailure(error: unknown): { text: string; exitCode: number } {
  if (error instanceof CliError) return { text: error.message, exitCode: error.exitCode };
  if (error instanceof ConfigError) return { text: error.message, exitCode: 1 };
  if (isUsageError(error)) return { text: (error as Error).message, exitCode: USAGE_EXIT };
  return { text: (error instanceof Error && error.stack) || String(error), exitCode: 1 };
}

/** Runs `main` and sets the process's exit code from what it returns or throws; `prefix` starts each error line. */
// biome-ignore lint/suspicious/noConfusingVoidType: a main that returns nothing means exit code 0
export function runCli(main: () => Promise<number | void> | number | void, prefix = ''): void {
  Promise.resolve()
    .then(main)
    .then(
      (code) => {
        process.exitCode = code ?? 0;
      },
      (error: unknown) => {
        const { text, exitCode } = describeFailure(error);
        process.stderr.write(`${prefix}${text}\n`);
        process.exitCode = exitCode;
      },
    );
}
