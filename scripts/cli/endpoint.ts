/**
 * Where the command-line tools send requests: --url, else DIGITNET_URL, else
 * with --deployed the API URL `npm run deploy` wrote to cdk.outputs.json,
 * else the local stack on 127.0.0.1.
 */
import { readFile } from 'node:fs/promises';

export const OUTPUTS_FILE = 'cdk.outputs.json';

export async function resolveEndpoint(options: { url?: string; deployed?: boolean }, env = process.env): Promise<string> {
  const explicit = options.url ?? env.DIGITNET_URL;
  if (explicit) return explicit.replace(/\/+$/, '');
  if (options.deployed) {
    let outputs: Record<string, Record<string, string>>;
    try {
      outputs = JSON.parse(await readFile(OUTPUTS_FILE, 'utf8'));
    } catch {
      throw new Error(`--deployed needs ${OUTPUTS_FILE}: run \`npm run deploy\` first, or pass --url`);
    }
    const url = Object.values(outputs).map((stack) => stack.ApiUrl).find(Boolean);
    if (!url) throw new Error(`${OUTPUTS_FILE} has no ApiUrl output`);
    return url.replace(/\/+$/, '');
  }
  return `http://127.0.0.1:${env.PORT ?? 3000}`;
}
