/**
 * `npm run build`: bundles the predict handler the way Lambda runs it — one
 * ESM file plus the tfjs .wasm files and the web page beside it — into
 * dist/predict/, and prints the size of each file.
 */
import { copyFile, mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { runCli } from './cli/run.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WASM_DIR = path.join(root, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');

const BUNDLE = {
  format: 'esm' as const,
  platform: 'node' as const,
  target: 'node22',
  // The ESM builds are the ones tfjs lists as side-effectful, so its backend registrations survive tree-shaking.
  mainFields: ['module', 'main'],
  minify: true,
  // As in the Lambda (infra/stack.ts): no source map, whose loading would cost ~25 ms of each cold start.
  sourcemap: false,
  // tfjs-backend-wasm's Emscripten glue uses require() and __dirname, which ESM output lacks (same banner as infra/function.ts).
  banner: {
    js: [
      "import { createRequire } from 'module'; import { fileURLToPath } from 'url'; import { dirname } from 'path';",
      'const require = createRequire(import.meta.url); const __filename = fileURLToPath(import.meta.url); const __dirname = dirname(__filename);',
    ].join(' '),
  },
  // Minified class names would turn "BadRequestError" into "Pf" in the logs.
  keepNames: true,
  // The optional native backend never goes in a Lambda: it does not fit a zip.
  // node-fetch is tfjs-core's fallback for runtimes without a global fetch (Node < 18): never
  // called here, and leaving it out saves parsing its 280 KB of Unicode tables (~20 ms of a cold start).
  external: ['@tensorflow/tfjs-node', 'node-fetch'],
};

export async function buildPredict(outDir = path.join(root, 'dist', 'predict')): Promise<{ outDir: string; bytes: Record<string, number> }> {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(path.join(outDir, 'web'), { recursive: true });
  await build({ ...BUNDLE, entryPoints: [path.join(root, 'functions', 'predict', 'handler.ts')], bundle: true, outfile: path.join(outDir, 'index.mjs'), logLevel: 'warning' });
  for (const file of (await readdir(WASM_DIR)).filter((f) => f.endsWith('.wasm'))) await copyFile(path.join(WASM_DIR, file), path.join(outDir, file));
  await copyFile(path.join(root, 'web', 'index.html'), path.join(outDir, 'web', 'index.html'));
  const bytes: Record<string, number> = {};
  for (const file of await readdir(outDir, { recursive: true })) {
    const info = await stat(path.join(outDir, file));
    if (info.isFile()) bytes[file] = info.size;
  }
  return { outDir, bytes };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  runCli(async () => {
    const { outDir, bytes } = await buildPredict();
    const total = Object.values(bytes).reduce((a, b) => a + b, 0);
    for (const [file, size] of Object.entries(bytes).sort()) process.stdout.write(`${(size / 1024).toFixed(0).padStart(8)} KiB  ${file}\n`);
    process.stdout.write(`${(total / 1024).toFixed(0).padStart(8)} KiB  total in ${path.relative(root, outDir)}\n`);
  });
}
