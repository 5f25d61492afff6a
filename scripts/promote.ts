/**
 * `npm run promote -- <version>`: points the serving pointer at a stored
 * version — a promotion, or a rollback to an older one. Servers pick it up
 * within MODEL_REFRESH_SECONDS.
 */
import { parseArgs } from 'node:util';
import { errorText, operatorRequest, operatorTarget } from './cli/operator.ts';
import { runCli } from './cli/run.ts';

const USAGE = `Usage: npm run promote -- <version> [--url URL | --deployed]

Serves <version> (see \`npm run models\`) from now on; use it to roll back too.
The service is --url, else DIGITNET_URL, else with --deployed the API in
cdk.outputs.json, else the local stack. Only the local stack (localhost,
127.x.x.x, [::1]) gets its token; other requests are signed with your AWS
credentials.`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: {
      url: { type: 'string' },
      deployed: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
  });
  if (values.help || positionals.length !== 1) {
    (values.help ? process.stdout : process.stderr).write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const target = await operatorTarget({ url: values.url, deployed: values.deployed });
  const result = await operatorRequest(target, 'POST', '/promote', { version: positionals[0] });
  if (result.status !== 200) {
    process.stderr.write(`not promoted: ${errorText(result)}\n`);
    return 1;
  }
  process.stdout.write(`${JSON.stringify(result.json)}\n`);
  process.stderr.write(
    `${positionals[0]} is now serving${result.json.previous ? ` (was ${result.json.previous})` : ''}\n`,
  );
  return 0;
}

runCli(main);
