/**
 * `npm run models`: every complete model version with its architecture, test
 * accuracy, live-holdout accuracy and date; the serving one is marked. With
 * --history, every change of the serving pointer instead (the audit trail).
 * Reads the bucket directly: the local one under .data/, or with --deployed
 * the one in cdk.outputs.json.
 */
import { parseArgs } from 'node:util';
import { readConfig } from '#lib/config';
import { openStorage } from '#lib/storage/storage';
import { ModelStore, type VersionSummary } from '#lib/storage/store';
import { stackOutput } from './cli/outputs.ts';
import { runCli } from './cli/run.ts';

const USAGE = `Usage: npm run models -- [--history] [--deployed] [--json]

Lists model versions, oldest first; * marks the one serving. "live acc" is the
accuracy on the live holdout (users' labelled drawings no version trains on)
when the version was trained; — when there were none. The last column is the
quality gate's verdict when the version was trained (see its reasons with --json).

--history lists every change of the serving pointer instead, newest last: when,
who (operator, schedule, training, rollback), what, from which version to which,
and why.`;

function table(versions: VersionSummary[]): string {
  if (versions.length === 0) return 'no model versions yet: train one with `npm run train`';
  const verdict = (v: VersionSummary) => (v.gate ? (v.gate.passed ? 'passed' : 'refused') : '');
  const pct = (x: number | undefined) => (x === undefined ? '—' : `${(x * 100).toFixed(2)}%`).padStart(8);
  const rows = versions.map((v) =>
    `${v.serving ? '*' : ' '} ${v.version.padEnd(24)} ${v.arch.padEnd(4)}  ${pct(v.accuracy)}  ${pct(v.liveAccuracy)}  ${v.createdAt}  ${verdict(v)}`.trimEnd(),
  );
  return ['  version                  arch  test acc  live acc  created                   gate', ...rows].join('\n');
}

function historyTable(history: Awaited<ReturnType<ModelStore['history']>>): string {
  if (history.length === 0) return 'no pointer changes recorded yet';
  return history
    .map((r) => {
      if ('problem' in r) return `${r.key} ${r.problem}`;
      const candidate = r.candidate
        ? ` candidate ${r.candidate.from?.version ?? '—'} → ${r.candidate.to?.version ?? '—'}`
        : '';
      const change = r.from === r.to ? r.to : `${r.from ?? '—'} → ${r.to}`;
      return `${r.time}  ${r.actor.padEnd(8)}  ${r.action.padEnd(15)}  ${change}${candidate}${r.reason ? `: ${r.reason}` : ''}`;
    })
    .join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      deployed: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      history: { type: 'boolean', default: false },
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
    const store = new ModelStore(storage.objects);
    if (values.history) {
      const history = await store.history();
      process.stdout.write(`${values.json ? JSON.stringify(history) : historyTable(history)}\n`);
      return 0;
    }
    const versions = await store.list();
    process.stdout.write(`${values.json ? JSON.stringify(versions) : table(versions)}\n`);
    return 0;
  } finally {
    await storage.close();
  }
}

runCli(main);
