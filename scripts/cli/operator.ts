/**
 * Calls the operator routes (/train, /promote) of either stack: the deployed
 * API authorises them with IAM, so requests are SigV4-signed with the caller's
 * AWS credentials; the local stack wants the token `npm start` wrote.
 */
import path from 'node:path';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { readConfig, readRegion } from '#lib/config';
import { isLocalUrl, resolveEndpoint, type EndpointFlags, type EndpointSources } from './endpoint.ts';
import { readLocalToken, TOKEN_FILE } from './local-token.ts';
import { CliError } from './run.ts';

export type OperatorTarget = { url: string; auth: 'sigv4' } | { url: string; auth: 'token'; tokenFile: string };

/**
 * The one place that decides how operator requests authenticate. --deployed
 * always signs (its URL is an API Gateway's, whatever it looks like); any
 * other URL gets the local token only when it names this machine, so the
 * token never leaves it.
 */
export async function operatorTarget(flags: EndpointFlags, sources: EndpointSources = {}): Promise<OperatorTarget> {
  const env = sources.env ?? process.env;
  const url = await resolveEndpoint(flags, { ...sources, env });
  if (flags.deployed || !isLocalUrl(url)) return { url, auth: 'sigv4' };
  return { url, auth: 'token', tokenFile: path.join(readConfig(env).dataDir, TOKEN_FILE) };
}

function regionOf(url: URL): string {
  const fromHost = /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(url.hostname)?.[1];
  const region = readRegion() ?? fromHost;
  if (!region) throw new CliError(`cannot tell the AWS region of ${url.host}: set AWS_REGION`);
  return region;
}

async function signedHeaders(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    service: 'execute-api',
    region: regionOf(url),
    // The SDK's own chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, SSO...) reads its variables; they are not ours.
    credentials: defaultProvider(),
    sha256: Hash.bind(null, 'sha256'),
  });
  const signed = await signer.sign({
    method,
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: url.pathname,
    headers: { ...headers, host: url.host },
    body,
  });
  return signed.headers;
}

export async function operatorRequest(
  target: OperatorTarget,
  method: 'GET' | 'POST',
  route: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const url = new URL(target.url + route);
  const text = body === undefined ? undefined : JSON.stringify(body);
  const plain = { 'content-type': 'application/json' };
  const headers =
    target.auth === 'sigv4'
      ? await signedHeaders(url, method, plain, text)
      : { ...plain, authorization: `Bearer ${await readLocalToken(target.tokenFile)}` };
  let response: Response;
  try {
    response = await fetch(url, { method, headers, body: text });
  } catch (error) {
    const hint = target.auth === 'token' ? ' Is `npm start` running?' : '';
    throw new CliError(`cannot reach ${target.url}: ${(error as Error).cause ?? (error as Error).message}.${hint}`);
  }
  const json = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  return { status: response.status, json };
}

/** Our handlers' `{error: {message}}`, or API Gateway's own `{message}` (a refused signature, throttling). */
export function errorText(result: { status: number; json: Record<string, unknown> }): string {
  const error = result.json.error as { message?: string } | undefined;
  const message = error?.message ?? result.json.message;
  return `${result.status}: ${typeof message === 'string' ? message : JSON.stringify(result.json)}`;
}
