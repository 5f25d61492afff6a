/**
 * `npm run report -- <version|latest> [--out FILE]`: renders a stored model
 * version's evaluation report to a local HTML file, with a "Live traffic"
 * section when the version has a live.json, and stores it (without that
 * section) beside the version as report.html when the version has none yet
 * (versions trained before reports existed).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readConfig } from '#lib/config';
import { loadMnist } from '#lib/training/mnist';
import { LIVE_FILE } from '#lib/live/records';
import { readStoredLive, type StoredLive } from '#lib/live/stored';
import { renderReport } from '#lib/report';
import { openStorage } from '#lib/storage/storage';
import { isVersionName, ModelStore } from '#lib/storage/store';
import { CliError, runCli, USAGE_EXIT } from './cli/run.ts';

const USAGE = `Usage: npm run report -- <version | latest> [options]

Writes a model version's evaluation report (training curves, confusion matrix,
per-digit precision and recall, the worst misclassified test images, and
what users said of its answers when \`npm run live\` has summarised them) as
one self-contained HTML file, and stores it as models/<version>/report.html
when the version has no stored report yet.

  <version>     e.g. 20261125T220000Z-mlp; \`latest\` is the serving version
  --out FILE    where to write it (default reports/<version>.html)
  -h, --help    this text

Storage: BUCKET (+ S3_ENDPOINT), else the embedded S3 under .data/.
MNIST comes from MNIST_DIR if set, else the bucket, else a download.`;

const REPORT_FILE = 'report.html';
const LISTED_VERSIONS = 5;

async function unknownVersion(store: ModelStore, version: string): Promise<CliError> {
  const versions = await store.list();
  if (versions.length === 0)
    return new CliError(
      `no model version "${version}": the bucket holds no versions yet; train one with \`npm run train\``,
    );
  const recent = versions
    .slice(-LISTED_VERSIONS)
    .reverse()
    .map((v) => `  ${v.version}${v.serving ? '  (serving)' : ''}`);
  const more = versions.length > LISTED_VERSIONS ? `\n  … and ${versions.length - LISTED_VERSIONS} older` : '';
  return new CliError(`no model version "${version}". Newest versions:\n${recent.join('\n')}${more}`);
}

/** The version's live.json for the "Live traffic" section; a damaged one is reported and left out, not fatal. */
async function readLive(store: ModelStore, version: string): Promise<StoredLive | undefined> {
  try {
    return await readStoredLive(store, version);
  } catch (error) {
    process.stderr.write(
      `report: models/${version}/${LIVE_FILE} left out (${(error as Error).message}); \`npm run live\` rewrites it\n`,
    );
    return undefined;
  }
}

function parseReportArgs(): { values: { out?: string; help?: boolean }; positionals: string[] } {
  try {
    return parseArgs({
      options: {
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: true,
    });
  } catch (error) {
    throw new CliError(`${(error as Error).message}\n\n${USAGE}`, USAGE_EXIT);
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseReportArgs();
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (positionals.length !== 1)
    throw new CliError(
      `${positionals.length === 0 ? 'no version given' : 'give exactly one version'}\n\n${USAGE}`,
      USAGE_EXIT,
    );

  const config = readConfig();
  const storage = await openStorage(config);
  try {
    const store = new ModelStore(storage.objects);
    let version = positionals[0]!;
    if (version === 'latest') {
      const latest = await store.latest();
      if (!latest)
        throw new CliError(
          'no model is serving yet, so there is no `latest`; give a version name or train one with `npm run train`',
        );
      version = latest.version;
    }
    const metrics = isVersionName(version) ? await store.metrics(version) : undefined;
    if (!metrics) throw await unknownVersion(store, version);

    const { test } = await loadMnist({
      dir: config.mnistDir ? path.resolve(config.mnistDir) : undefined,
      bucket: storage.objects,
      baseUrl: config.mnistBaseUrl,
      cacheDir: path.join(config.dataDir, 'mnist'),
    });
    const live = await readLive(store, version);
    const html = await renderReport(metrics, test.images, live);

    const out = path.resolve(values.out ?? path.join('reports', `${version}.html`));
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(out, html);
    process.stdout.write(`wrote ${out}\n`);

    // A stored report is part of the version; one already there (written by its training run) is left as it is.
    if (await store.attachment(version, REPORT_FILE)) {
      process.stdout.write(`models/${version}/${REPORT_FILE} already stored; left unchanged\n`);
    } else {
      // The stored report describes the version as trained, like the one training stores: live traffic changes.
      const stored = live ? await renderReport(metrics, test.images) : html;
      await store.attach(version, REPORT_FILE, stored, 'text/html; charset=utf-8');
      process.stdout.write(`stored models/${version}/${REPORT_FILE} in ${storage.bucket}\n`);
    }
  } finally {
    await storage.close();
  }
}

runCli(main, 'report: ');
