/**
 * `npm run promote -- <version>`: points the serving pointer at a stored
 * version — a promotion, or a rollback to an older one. Servers pick it up
 * within MODEL_REFRESH_SECONDS.
 */
import { parseArgs } from 'node:util';
import { readConfig } from '#lib/config';
import { resolveEndpoint } from './cli/endpoint.ts';
import { errorText, operatorRequest } from './cli/operator.ts';

const USAGE = `Usage: npm run promote -- <version> [--url URL | --deployed]

Serves <version> (see \`npm run models\`) from now on; use it to roll back too.`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: { url: { type: 'string' }, deployed: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    allowPositionals: true,
  });
  if (values.help || positionals.length !== 1) {
    (values.help ? process.stdout : process.stderr).write(USAGE + '\n');
    return values.help ? 0 : 2;
  }
  const endpoint = await resolveEndpoint({ url: values.url, deployed: values.deployed });
  const signed = values.deployed || !/^http:\/\/(127\.0\.0\.1|localhost|\[::1\])/.test(endpoint);
  const result = await operatorRequest({ endpoint, signed, dataDir: readConfig().dataDir }, 'POST', '/promote', { version: positionals[0] });
  if (result.status !== 200) {
    process.stderr.write(`not promoted: ${errorText(result)}\n`);
    return 1;
  }
  process.stdout.write(JSON.stringify(result.json) + '\n');
  process.stderr.write(`${positionals[0]} is now serving${result.json.previous ? ` (was ${result.json.previous})` : ''}\n`);
  return 0;
}

main().then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = 2;
  },
);
