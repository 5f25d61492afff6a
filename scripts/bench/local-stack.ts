/**
 * The local stack (`npm start`) as a child process for the HTTP benches, in a
 * data dir of the bench's own, and the memory it holds across its processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createS3Client, IN_PROCESS_S3_TIMEOUTS, S3ObjectStore } from '#lib/storage/objects';
import { ModelStore } from '#lib/storage/store';
import { round } from './stats.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const READY_LIMIT_MS = 240_000;

export interface RunningStack {
  child: ChildProcess;
  url: string;
  workers: number;
  /** The embedded S3's endpoint and bucket; its credentials are in `<dataDir>/s3/credentials.json`. */
  s3: string;
  bucket: string;
  stop(): Promise<void>;
}

/** MNIST_DIR, else the genuine files beside the checkout (../shared/mnist), else none: the stack downloads them. */
export function benchMnistDir(): string | undefined {
  if (process.env.MNIST_DIR) return path.resolve(process.env.MNIST_DIR);
  const shared = path.resolve(root, '..', 'shared', 'mnist');
  return existsSync(shared) ? shared : undefined;
}

/** The running stack's model store, signed with its data dir's key pair; `close` frees the client. */
export async function stackModelStore(
  stack: Pick<RunningStack, 's3' | 'bucket'>,
  dataDir: string,
): Promise<{ store: ModelStore; close(): void }> {
  const credentials = JSON.parse(await readFile(path.join(dataDir, 's3', 'credentials.json'), 'utf8'));
  const s3 = createS3Client({
    bucket: stack.bucket,
    endpoint: stack.s3,
    region: 'us-east-1',
    credentials,
    timeouts: IN_PROCESS_S3_TIMEOUTS,
  });
  return { store: new ModelStore(new S3ObjectStore(s3, stack.bucket)), close: () => s3.destroy() };
}

/** Starts `npm start` on a free port; trains `epochs` (one by default) first when `dataDir` holds no model. */
export function startStack(
  dataDir: string,
  mnistDir: string | undefined,
  extraEnv: Record<string, string> = {},
  epochs = 1,
): Promise<RunningStack> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(root, 'scripts', 'local.ts'), '--port', '0', '--epochs', String(epochs)],
    {
      cwd: root,
      // Access logs at info would measure stderr as much as the service.
      env: {
        ...process.env,
        DATA_DIR: dataDir,
        MNIST_DIR: mnistDir ?? '',
        LOG_LEVEL: 'warn',
        BUCKET: '',
        S3_ENDPOINT: '',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`the local stack was not ready within ${READY_LIMIT_MS / 1000} s`));
    }, READY_LIMIT_MS);
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const ready = buffered.split('\n').find((line) => line.includes('"event":"ready"'));
      if (!ready) return;
      clearTimeout(timer);
      const { url, workers, s3, bucket } = JSON.parse(ready);
      resolve({ child, url, workers, s3, bucket, stop });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the local stack exited with ${code} before it was ready`));
    });
  });
}

async function parentOf(pid: string): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; the parent pid is the second field after it.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** The live children of `pid`, from /proc (Linux). */
export async function childProcesses(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (/^\d+$/.test(entry) && (await parentOf(entry)) === pid) children.push(Number(entry));
  }
  return children;
}

async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
}

/**
 * Resident memory of the stack's primary and its server processes together,
 * from the kernel: what they hold, not what V8 reports. Training jobs are
 * children too, but none run during a bench.
 */
export async function stackRssMiB(pid: number): Promise<number> {
  const pids = [pid, ...(await childProcesses(pid))];
  const sizes = await Promise.all(pids.map((p) => rssKiB(p).catch(() => 0)));
  return round(sizes.reduce((a, b) => a + b, 0) / 1024, 1);
}
