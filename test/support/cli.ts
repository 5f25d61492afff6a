/** Runs the project's scripts as a user's npm commands do, for the CLI tests. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './env.ts';

const run = promisify(execFile);

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `script` (relative to the repository) under tsx from `cwd` (default
 * the repository) and resolves with its exit code and output: a failing
 * command is a result to assert on, not a thrown error.
 */
export async function runScript(
  script: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; maxBuffer?: number } = {},
): Promise<ScriptResult> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), path.join(repoRoot, script), ...args],
      {
        cwd: options.cwd ?? repoRoot,
        env: options.env,
        maxBuffer: options.maxBuffer,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as ScriptResult;
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}
