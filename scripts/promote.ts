/**
 * `npm run promote -- <version>`: points the serving pointer at a stored
 * version — a promotion, or a rollback to an older one. With --shadow or
 * --canary P the version becomes the candidate beside the serving one instead;
 * --clear-candidate ends that. --pin holds the promoted version against every
 * automatic change, --unpin lets them resume; --reason goes into the audit
 * trail. Servers pick it up within MODEL_REFRESH_SECONDS.
 */
import { parseArgs } from 'node:util';
import { errorText, operatorRequest, operatorTarget } from './cli/operator.ts';
import { runCli } from './cli/run.ts';

const USAGE = `Usage: npm run promote -- <version> [--pin] [--reason TEXT] [--url URL | --deployed]
       npm run promote -- <version> --shadow | --canary P [--reason TEXT] [--url URL | --deployed]
       npm run promote -- --clear-candidate | --unpin [--reason TEXT] [--url URL | --deployed]

Serves <version> (see \`npm run models\`) from now on; use it to roll back too.
Promoting ends any shadow or canary, and any pin unless --pin is given again.

  --shadow           run <version> beside the serving one on every request; callers
                     still get the serving answer, captures record both
  --canary P         let <version> answer P% of requests (1 to 99), chosen by a hash of
                     the request, so a retry gets the same version
  --clear-candidate  stop the shadow or canary; the serving version answers everything
  --pin              keep <version> serving: no automatic promotion, rollback or
                     training run changes the pointer until --unpin
  --unpin            let automatic decisions change the pointer again
  --reason TEXT      why, recorded in the audit trail (\`npm run models -- --history\`)

A candidate must be a complete version other than the serving one; the quality
gate is not required, but its refusal is shown. \`npm run live\` compares the two.

The service is --url, else DIGITNET_URL, else with --deployed the API in
cdk.outputs.json, else the local stack. Only the local stack (localhost,
127.x.x.x, [::1]) gets its token; other requests are signed with your AWS
credentials.`;

/** The body POST /promote takes for these arguments, or undefined when they do not make one request. */
function promoteBody(
  version: string | undefined,
  values: {
    shadow: boolean;
    canary?: string;
    'clear-candidate': boolean;
    pin: boolean;
    unpin: boolean;
    reason?: string;
  },
): Record<string, unknown> | undefined {
  const reason = values.reason === undefined ? {} : { reason: values.reason };
  const candidate = values.shadow || values.canary !== undefined;
  if (values['clear-candidate'] || values.unpin) {
    const alone = version === undefined && !candidate && !values.pin && values['clear-candidate'] !== values.unpin;
    if (!alone) return undefined;
    return values.unpin ? { pin: false, ...reason } : { clearCandidate: true, ...reason };
  }
  if (version === undefined || (values.shadow && values.canary !== undefined) || (candidate && values.pin))
    return undefined;
  if (values.shadow) return { version, mode: 'shadow', ...reason };
  // Anything but a whole number goes as written: the API says what a percent must be, in one place.
  if (values.canary !== undefined)
    return {
      version,
      mode: 'canary',
      percent: /^-?\d+$/.test(values.canary) ? Number(values.canary) : values.canary,
      ...reason,
    };
  return { version, ...(values.pin ? { pin: true } : {}), ...reason };
}

function outcome(body: Record<string, unknown>, pointer: Record<string, unknown>): string {
  const candidate = pointer.candidate as { version: string; mode: string; percent?: number } | undefined;
  if (body.clearCandidate) return `no candidate now: ${pointer.version} answers every request`;
  if (body.pin === false) return `${pointer.version} is no longer pinned: automatic decisions may change it again`;
  if (body.mode === 'shadow')
    return `${candidate?.version} now runs as a shadow beside ${pointer.version}: on every request, never answering`;
  if (body.mode === 'canary')
    return `${candidate?.version} now answers ${candidate?.percent}% of requests as a canary beside ${pointer.version}`;
  const pinned = body.pin ? ', pinned' : '';
  return `${pointer.version} is now serving${pinned}${pointer.previous ? ` (was ${pointer.previous})` : ''}`;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: {
      shadow: { type: 'boolean', default: false },
      canary: { type: 'string' },
      'clear-candidate': { type: 'boolean', default: false },
      pin: { type: 'boolean', default: false },
      unpin: { type: 'boolean', default: false },
      reason: { type: 'string' },
      url: { type: 'string' },
      deployed: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
  });
  const body = positionals.length <= 1 ? promoteBody(positionals[0], values) : undefined;
  if (values.help || !body) {
    (values.help ? process.stdout : process.stderr).write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const target = await operatorTarget({ url: values.url, deployed: values.deployed });
  const result = await operatorRequest(target, 'POST', '/promote', body);
  if (result.status !== 200) {
    const what = body.clearCandidate
      ? 'not cleared'
      : body.pin === false
        ? 'not unpinned'
        : body.mode
          ? 'not made the candidate'
          : 'not promoted';
    process.stderr.write(`${what}: ${errorText(result)}\n`);
    return 1;
  }
  process.stdout.write(`${JSON.stringify(result.json)}\n`);
  process.stderr.write(`${outcome(body, result.json)}\n`);
  const gate = result.json.gate as { reasons?: string[] } | undefined;
  if (gate)
    process.stderr.write(
      `note: the quality gate refused ${body.version} when it was trained: ${gate.reasons?.join('; ') ?? 'no reason recorded'}\n`,
    );
  return 0;
}

runCli(main);
