/**
 * `npm run bench -- <name> [options]`: speed on this machine, printed as JSON
 * lines or a table (machine first). Numbers go into BENCHMARKS.md; tests
 * never assert speed. `kernels` and `preprocess` run as they are imported.
 */
import { runCli, USAGE_EXIT } from '../cli/run.ts';
import { benchAugment } from './augment.ts';
import { benchCost } from './cost.ts';
import { benchJpegScale } from './jpeg-scale.ts';
import { benchLoad } from './load.ts';
import { benchNumbers } from './numbers.ts';
import { benchPeer } from './peer.ts';
import { benchCandidate, benchCapture, benchMetrics, benchPredict } from './predict.ts';
import { benchTrain } from './train.ts';
import { benchVerdict } from './verdict.ts';

const benches: Record<string, (argv: string[]) => Promise<void>> = {
  train: benchTrain,
  predict: () => benchPredict(),
  capture: () => benchCapture(),
  metrics: () => benchMetrics(),
  candidate: () => benchCandidate(),
  cost: benchCost,
  load: benchLoad,
  peer: benchPeer,
  augment: benchAugment,
  'jpeg-scale': benchJpegScale,
  numbers: benchNumbers,
  verdict: benchVerdict,
  kernels: async () => void (await import('./kernels.ts')),
  preprocess: async () => void (await import('./preprocess.ts')),
};

runCli(async () => {
  const [name, ...rest] = process.argv.slice(2);
  const bench = name ? benches[name] : undefined;
  if (!bench) {
    process.stderr.write(`Usage: npm run bench -- <${Object.keys(benches).join('|')}> [options]\n`);
    return USAGE_EXIT;
  }
  await bench(rest);
  process.exit(0);
});
