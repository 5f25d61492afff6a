/** `npm start` as the end-to-end tests run it: a child process on its own data folder, ready once it says so. */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeWhenDone, repoRoot } from './env.ts';

export interface RunningStack {
  child: ChildProcess;
  /** The ready line: where the embedded S3 listens and its bucket. */
  ready: { url: string; s3: string; bucket: string };
}

/**
 * Starts `npm start` and stops it when the suite ends, waiting until it has exited: its embedded S3 writes into the
 * suite's temp dir, which is removed after it.
 */
export function startLocalStack(env: NodeJS.ProcessEnv, args: string[] = []): Promise<RunningStack> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/local.ts', ...args], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  closeWhenDone(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      const line = chunk
        .toString()
        .split('\n')
        .find((l) => l.includes('"event":"ready"'));
      if (line) resolve({ child, ready: JSON.parse(line) });
    });
    child.once('exit', (code) => reject(new Error(`npm start exited with ${code}: ${stderr.slice(-2000)}`)));
  });
}
