/**
 * `npm run models`: every complete model version with its architecture, test
 * accuracy, live-holdout accuracy and date; the serving one is marked. Reads the bucket directly:
 * the local one under .data/, or with --deployed the one in cdk.outputs.json.
 */
import { parseArgs } from 'node:util';
import { readConfig } from '#lib/config';
import { openStorage } from '#lib/storage/storage';
import { ModelStore, type VersionSummary } from '#lib/storage/store';
import { stackOutput } from './cli/outputs.ts';
import { runCli } from './cli/run.ts';

const USAGE = `Usage: npm run models -- [--deployed] [--json]

Lists model versions, oldest first; * marks the one serving. "live acc" is the
accuracy on the live holdout (users' labelled drawings no version trains on)
when the version was trained; — when there were none. The last column is the
quality gate's verdict when the version was trained (see its reasons with --json).`;

function table(versions: VersionSummary[]): string {
  if (versions.length === 0) return 'no model versions yet: train one with `npm run train`';
  const verdict = (v: VersionSummary) => (v.gate ? (v.gate.passed ? 'passed' : 'refused') : '');
  const pct = (x: number | undefined) => (x === undefined ? '—' : `${(x * 100).toFixed(2)}%`).padStart(8);
  const rows = versions.map((v) =>
    `${v.serving ? '*' : ' '} ${v.version.padEnd(24)} ${v.arch.padEnd(4)}  ${pct(v.accuracy)}  ${pct(v.liveAccuracy)}  ${v.createdAt}  ${verdict(v)}`.trimEnd(),
  );
  return ['  version                  arch  test acc  live acc  created                   gate', ...rows].join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      deployed: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const config = readConfig();
  const storage = await openStorage(
    values.deployed ? { ...config, bucket: await stackOutput('BucketName'), s3Endpoint: undefined } : config,
  );
  try {
    const versions = await new ModelStore(storage.objects).list();
    process.stdout.write(`${values.json ? JSON.stringify(versions) : table(versions)}\n`);
    return 0;
  } finally {
    await storage.close();
  }
}

runCli(main);
