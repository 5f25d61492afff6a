/**
 * Where the command-line tools send requests: --url, else DIGITNET_URL, else
 * with --deployed the API URL `npm run deploy` wrote to cdk.outputs.json,
 * else the local stack on 127.0.0.1.
 */
import { readConfig } from '#lib/config';
import { OUTPUTS_FILE, stackOutput } from './outputs.ts';
import { CliError } from './run.ts';

export interface EndpointFlags {
  url?: string;
  deployed?: boolean;
}

export interface EndpointSources {
  env?: Record<string, string | undefined>;
  /** The deployed API's URL, asked for only with --deployed and no URL given; by default from cdk.outputs.json. */
  deployedUrl?: () => Promise<string>;
}

const deployedApiUrl = () => stackOutput('ApiUrl', { orElse: 'pass --url' });

function serviceUrl(text: string, from: string): string {
  let protocol: string;
  try {
    protocol = new URL(text).protocol;
  } catch {
    protocol = '';
  }
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new CliError(`${from} must be an http(s) URL like http://127.0.0.1:3000; got "${text}"`);
  }
  return text.replace(/\/+$/, '');
}

export async function resolveEndpoint(flags: EndpointFlags, sources: EndpointSources = {}): Promise<string> {
  const env = sources.env ?? process.env;
  if (flags.url) return serviceUrl(flags.url, '--url');
  if (env.DIGITNET_URL) return serviceUrl(env.DIGITNET_URL, 'DIGITNET_URL');
  if (flags.deployed)
    return serviceUrl(await (sources.deployedUrl ?? deployedApiUrl)(), `the ApiUrl in ${OUTPUTS_FILE}`);
  return `http://127.0.0.1:${readConfig(env).port}`;
}

/**
 * This machine, by name or loopback address, matched exactly: any other host
 * (`localhost.evil.net`, `127.0.0.1.nip.io`) may be someone else's. The URL
 * parser has already lower-cased the name and normalised the address.
 */
export function isLocalUrl(url: string): boolean {
  const { hostname } = new URL(url);
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}
