/**
 * How a Lambda entry becomes its asset: the one set of esbuild settings that
 * `npm run build` (scripts/build.ts) and the CDK functions (infra/function.ts)
 * both derive from, and the predict function's asset (entry and files beside
 * the bundle). Free of CDK imports, so `npm run build` does not load the CDK.
 */
import path from 'node:path';
import type { BuildOptions } from 'esbuild';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..');

export const LAMBDA_ESBUILD = {
  platform: 'node',
  // The Lambda runtime (infra/function.ts) and the training image run Node 22.
  target: 'node22',
  // ESM matches the source ("type": "module") and lets the code use import.meta.url to find its files.
  format: 'esm',
  // The same tsconfig as the editor and the tests, so the bundle compiles what was type-checked.
  tsconfig: 'tsconfig.json',
  // tfjs-backend-wasm's Emscripten glue uses require() and __dirname, which ESM output lacks.
  banner: [
    "import { createRequire } from 'module'; import { fileURLToPath } from 'url'; import { dirname } from 'path';",
    'const require = createRequire(import.meta.url); const __filename = fileURLToPath(import.meta.url); const __dirname = dirname(__filename);',
  ].join(' '),
  // The ESM builds are the ones tfjs lists as side-effectful, so its backend registrations survive tree-shaking.
  mainFields: ['module', 'main'],
  // Smaller asset, faster cold start.
  minify: true,
  // Minified class names would turn "BadRequestError" into "Pf" in the logs.
  keepNames: true,
  // Keeps a source map small: traces need line numbers, not the source text.
  sourcesContent: false,
  // Everything else is bundled, our pinned AWS SDK included, so the tested version is the one that runs.
  // The optional native backend never goes in a Lambda: it does not fit a zip.
  // node-fetch is tfjs-core's fallback for runtimes without a global fetch (Node < 18): never
  // called here, and leaving it out saves parsing its 280 KB of Unicode tables (~20 ms of a cold start).
  external: ['@tensorflow/tfjs-node', 'node-fetch'],
} as const;

/** A Lambda function's code: what is bundled, and what is copied beside the bundle. */
export interface LambdaAsset {
  /** Entry file, relative to the repository root. */
  entry: string;
  /**
   * Ship a source map and have Node apply it to stack traces. Loading the map
   * costs ~25 ms of every cold start, so a function whose cold start matters
   * goes without; `keepNames` still names each function in its traces.
   */
  sourceMaps: boolean;
  /** Files copied into the asset after bundling: repository-relative source → asset-relative destination. */
  files?: Record<string, string>;
}

/** tfjs-backend-wasm picks one of these at run time (plain, SIMD, threaded SIMD), so all three ship. */
export const WASM_FILES = [
  'tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm',
];

export const PREDICT_ASSET: LambdaAsset = {
  entry: 'functions/predict/handler.ts',
  // Every visitor after a quiet spell waits for a cold start; errors here are rare.
  sourceMaps: false,
  files: {
    ...Object.fromEntries(WASM_FILES.map((file) => [`node_modules/@tensorflow/tfjs-backend-wasm/dist/${file}`, file])),
    'web/index.html': 'web/index.html',
  },
};

/** The name NodejsFunction gives an ESM bundle, and so the handler's module. */
const BUNDLE_FILE = 'index.mjs';

/** esbuild's options for bundling `asset` into `outDir`, as the CDK bundles it. */
export function esbuildOptions(asset: LambdaAsset, outDir: string): BuildOptions {
  const { tsconfig, external, ...settings } = LAMBDA_ESBUILD;
  return {
    ...settings,
    tsconfig: path.join(REPO_ROOT, tsconfig),
    banner: { js: settings.banner },
    mainFields: [...settings.mainFields],
    external: [...external],
    sourcemap: asset.sourceMaps,
    entryPoints: [path.join(REPO_ROOT, asset.entry)],
    bundle: true,
    outfile: path.join(outDir, BUNDLE_FILE),
  };
}
