/**
 * `npm run bench -- peer [--seconds N] [--connections N]`: digitnet against
 * the peer a Python user would write (scripts/bench/peer/peer.py: FastAPI,
 * uvicorn with 2 workers, Pillow, NumPy, PyTorch), in one run on this
 * machine. Starts `npm start` (2 server processes, a 2-epoch MLP trained
 * first) and the peer with the same weights on 127.0.0.1, checks both answer
 * each input kind, then per kind runs autocannon against one and then the
 * other (16 connections, 10 s each by default) and prints req/s, latency and
 * the ratio. Stops both by itself. Needs a Python 3 with fastapi, uvicorn,
 * torch, pillow and numpy (`PYTHON=…` to name one); without it, says what to
 * install and exits non-zero.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Jimp } from 'jimp';
import { loadMnist } from '#lib/training/mnist';
import { benchMnistDir, stackModelStore, startStack } from './local-stack.ts';
import { canvasDrawing, paperPhoto } from './rerender.ts';
import { pythonWith } from './python.ts';
import { machine, round } from './stats.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const emit = (record: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(record)}\n`);

const PEER_SCRIPT = path.join(here, 'peer', 'peer.py');
const PEER_MODULES = ['fastapi', 'uvicorn', 'torch', 'PIL', 'numpy'];
const PEER_WORKERS = 2;
const PEER_READY_MS = 60_000;
/** The tests' model: what the issue's figures were measured with. */
const EPOCHS = 2;

/** A port nothing listens on now: uvicorn with several workers cannot report the one it picked itself. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The serving version's model.json and weights.bin, read back (and verified) from the stack's bucket. */
async function exportServingModel(stack: { s3: string; bucket: string }, dataDir: string, to: string) {
  const { store, close } = await stackModelStore(stack, dataDir);
  try {
    const version = (await store.latest())?.version;
    if (!version) throw new Error('the stack serves no version');
    const { artifacts } = await store.verify(version);
    const manifest = [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }];
    await writeFile(
      path.join(to, 'model.json'),
      JSON.stringify({ modelTopology: artifacts.modelTopology, weightsManifest: manifest }),
    );
    await writeFile(path.join(to, 'weights.bin'), Buffer.from(artifacts.weightData as ArrayBuffer));
    return version;
  } finally {
    close();
  }
}

interface RunningPeer {
  url: string;
  versions: Record<string, string>;
  stop(): Promise<void>;
}

/** The peer on a free port, ready once /health answers; its own process group, so stopping it stops its workers. */
async function startPeer(python: string, modelDir: string): Promise<RunningPeer> {
  const port = await freePort();
  const child: ChildProcess = spawn(python, [PEER_SCRIPT, '--port', String(port), '--workers', String(PEER_WORKERS)], {
    cwd: root,
    env: { ...process.env, PEER_MODEL_DIR: modelDir, PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    process.kill(-child.pid!, 'SIGTERM');
    const killer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + PEER_READY_MS;
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the peer exited with ${child.exitCode} before it was ready`);
      if (performance.now() > deadline) throw new Error(`the peer was not ready within ${PEER_READY_MS / 1000} s`);
      const ready = await fetch(`${url}/health`).then(
        (response) => response.ok,
        () => false,
      );
      if (ready) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const line = output.split('\n').find((l) => l.includes('"peer versions"'));
  const { event: _, ...versions } = line ? JSON.parse(line) : { event: '' };
  return { url, versions, stop };
}

/** The three input kinds of the issue, from the first MNIST test digit. */
async function inputKinds(digit: Uint8Array): Promise<Record<string, string>> {
  const small = new Jimp({ width: 28, height: 28, color: 0xff });
  for (let i = 0; i < 784; i++) small.bitmap.data.set([digit[i]!, digit[i]!, digit[i]!, 255], i * 4);
  const images = {
    '28x28 PNG': await small.getBuffer('image/png'),
    '280x280 canvas PNG': await canvasDrawing(digit, 1),
    '320x240 JPEG photo': await paperPhoto(digit, 1),
  };
  return Object.fromEntries(
    Object.entries(images).map(([name, bytes]) => [name, JSON.stringify({ image: bytes.toString('base64') })]),
  );
}

async function answer(url: string, body: string): Promise<{ digit?: number; confidence?: number }> {
  const response = await fetch(`${url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  if (response.status !== 200) throw new Error(`${url} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as { digit?: number; confidence?: number };
}

async function load(url: string, body: string, connections: number, seconds: number) {
  const result = await autocannon({
    url: `${url}/predict`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration: seconds,
  });
  return {
    requestsPerSecond: round(result.requests.total / result.duration, 0),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    loadAverage: round(os.loadavg()[0]!),
  };
}

export async function benchPeer(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '16' } },
    strict: true,
  });
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  if (!(seconds > 0) || !(Number.isInteger(connections) && connections > 0))
    throw new Error('--seconds and --connections must be positive numbers');
  const python = pythonWith(
    PEER_MODULES,
    'the peer',
    'apt-get install python3-fastapi python3-uvicorn python3-torch python3-pil python3-numpy, ' +
      'or pip install fastapi uvicorn torch pillow numpy',
  );

  emit({ bench: 'peer', machine: machine(), loadAverage: os.loadavg().map((l) => round(l)) });
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'digitnet-peer-'));
  const modelDir = path.join(dataDir, 'peer-model');
  const mnistDir = benchMnistDir();
  const stack = await startStack(dataDir, mnistDir, {}, EPOCHS);
  let peer: RunningPeer | undefined;
  try {
    await mkdir(modelDir);
    const version = await exportServingModel(stack, dataDir, modelDir);
    peer = await startPeer(python, modelDir);
    emit({
      measure: 'servers',
      digitnet: { url: stack.url, serverProcesses: stack.workers, version, epochs: EPOCHS },
      peer: { url: peer.url, workers: PEER_WORKERS, ...peer.versions },
    });
    const { test } = await loadMnist({ dir: mnistDir, cacheDir: path.join(dataDir, 'mnist') });
    const kinds = await inputKinds(test.images.subarray(0, 784));
    for (const [kind, body] of Object.entries(kinds)) {
      const [ours, theirs] = [await answer(stack.url, body), await answer(peer.url, body)];
      emit({ measure: 'answers', kind, label: test.labels[0], digitnet: ours.digit, peer: theirs.digit });
      // A short warm-up of each, outside the measurement.
      await load(stack.url, body, connections, 1);
      await load(peer.url, body, connections, 1);
      const digitnet = await load(stack.url, body, connections, seconds);
      const python = await load(peer.url, body, connections, seconds);
      emit({
        measure: 'throughput',
        kind,
        connections,
        seconds,
        digitnet,
        peer: python,
        ratio: round(digitnet.requestsPerSecond / python.requestsPerSecond),
      });
    }
  } finally {
    await peer?.stop();
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
