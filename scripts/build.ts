/**
 * `npm run build`: bundles the predict handler the way Lambda runs it — one
 * ESM file plus the tfjs .wasm files and the web page beside it — into
 * dist/predict/, and prints the size of each file.
 */
import { copyFile, mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { esbuildOptions, PREDICT_ASSET, REPO_ROOT } from '../infra/lambda-bundle.ts';
import { runCli } from './cli/run.ts';

/**
 * Builds the predict function's asset as the CDK does (infra/lambda-bundle.ts
 * holds the settings both use): the bundle, then the files beside it.
 */
export async function buildPredict(
  outDir = path.join(REPO_ROOT, 'dist', 'predict'),
): Promise<{ outDir: string; bytes: Record<string, number> }> {
  await rm(outDir, { recursive: true, force: true });
  await build({ ...esbuildOptions(PREDICT_ASSET, outDir), logLevel: 'warning' });
  for (const [from, to] of Object.entries(PREDICT_ASSET.files ?? {})) {
    await mkdir(path.dirname(path.join(outDir, to)), { recursive: true });
    await copyFile(path.join(REPO_ROOT, from), path.join(outDir, to));
  }
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
    for (const [file, size] of Object.entries(bytes).sort())
      process.stdout.write(`${(size / 1024).toFixed(0).padStart(8)} KiB  ${file}\n`);
    process.stdout.write(
      `${(total / 1024).toFixed(0).padStart(8)} KiB  total in ${path.relative(REPO_ROOT, outDir)}\n`,
    );
  });
}
