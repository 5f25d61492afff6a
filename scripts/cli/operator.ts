/**
 * Calls the operator routes (/train, /promote) of either stack: the deployed
 * API authorises them with IAM, so requests are SigV4-signed with the caller's
 * AWS credentials; the local stack wants the token `npm start` wrote.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';

export interface OperatorTarget {
  endpoint: string;
  /** Sign with AWS credentials (deployed) rather than send the local token. */
  signed: boolean;
  dataDir: string;
}

function regionOf(url: URL): string {
  const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(url.hostname)?.[1];
  if (!region) throw new Error(`cannot tell the AWS region of ${url.host}: set AWS_REGION`);
  return region;
}

async function localToken(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'local-token');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    throw new Error(`no operator token at ${file}: is \`npm start\` running from this folder?`);
  }
}

export async function operatorRequest(target: OperatorTarget, method: 'GET' | 'POST', route: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const url = new URL(target.endpoint + route);
  const text = body === undefined ? undefined : JSON.stringify(body);
  let headers: Record<string, string> = { 'content-type': 'application/json' };
  if (target.signed) {
    const signer = new SignatureV4({ service: 'execute-api', region: regionOf(url), credentials: defaultProvider(), sha256: Hash.bind(null, 'sha256') });
    const signed = await signer.sign({
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: url.pathname,
      headers: { ...headers, host: url.host },
      body: text,
    });
    headers = signed.headers;
  } else {
    headers.authorization = `Bearer ${await localToken(target.dataDir)}`;
  }
  let response: Response;
  try {
    response = await fetch(url, { method, headers, body: text });
  } catch (error) {
    const hint = target.signed ? '' : ' Is `npm start` running?';
    throw new Error(`cannot reach ${target.endpoint}: ${(error as Error).cause ?? (error as Error).message}.${hint}`);
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
