/**
 * Checks `npm start` makes before it trains anything: that no other
 * `npm start` owns the data folder (two embedded S3 servers on one folder, and
 * the second overwriting the first's operator token), and that the port is
 * free — found out now rather than after a minute of training.
 */
import { rmSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';

export const LOCK_FILE = 'local.pid';

export class PreflightError extends Error {
  override name = 'PreflightError';
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Makes this process the data folder's only `npm start` until it exits. A
 * lock left by a process that no longer runs (killed with SIGKILL, say) is
 * taken over.
 */
export async function claimDataDir(dataDir: string): Promise<void> {
  // Owner-only when this creates it; a folder that exists keeps its mode (the secrets in it are owner-only anyway).
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const lock = path.join(dataDir, LOCK_FILE);
  for (;;) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isRunning(owner)) {
      throw new PreflightError(
        `another npm start (pid ${owner}) is using ${dataDir}: stop it first, or give this one its own folder with DATA_DIR` +
          ` (if pid ${owner} is not an npm start, delete ${lock})`,
      );
    }
    await rm(lock, { force: true });
  }
  // 'exit' handlers must be synchronous.
  process.on('exit', () => rmSync(lock, { force: true }));
}

/** Fails if host:port cannot be listened on; port 0 (any free port) always can. */
export async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (error: NodeJS.ErrnoException) => {
      const why =
        error.code === 'EADDRINUSE'
          ? `port ${port} on ${host} is in use (another npm start?): stop it, or choose another with --port`
          : `cannot listen on ${host}:${port}: ${error.message}`;
      reject(new PreflightError(why));
    });
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

const LOOPBACK = ['127.0.0.1', 'localhost', '::1'];

/** What `npm start --host` should warn about, or undefined for a loopback address. */
export function exposureWarning(host: string): string | undefined {
  if (LOOPBACK.includes(host)) return undefined;
  return `binding ${host} makes the service reachable from other machines.`;
}
