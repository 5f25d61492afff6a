/**
 * `npm run bench -- <train|predict>`: speed on this machine, printed as JSON
 * lines (machine first). Numbers go into BENCHMARKS.md; tests never assert speed.
 */
import { benchPredict } from './predict.ts';
import { benchTrain } from './train.ts';

const benches: Record<string, (argv: string[]) => Promise<void>> = {
  train: benchTrain,
  predict: () => benchPredict(),
};

const [name, ...rest] = process.argv.slice(2);
const bench = name ? benches[name] : undefined;
if (!bench) {
  process.stderr.write(`Usage: npm run bench -- <${Object.keys(benches).join('|')}> [options]\n`);
  process.exitCode = 2;
} else {
  await bench(rest);
  process.exit(0);
}
