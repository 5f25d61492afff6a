/**
 * `npm run predict -- <image ...> [--url URL | --deployed] [--json]`: sends
 * image files to the service and prints each digit with a small bar chart.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { resolveEndpoint } from './cli/endpoint.ts';
import { runCli } from './cli/run.ts';

const USAGE = `Usage: npm run predict -- <image file ...> [options]

Classifies handwritten-digit images (PNG, JPEG, GIF, BMP) with the service.

  --url URL     service to call (DIGITNET_URL; default the local stack on
                http://127.0.0.1:3000, started with \`npm start\`)
  --deployed    call the API that \`npm run deploy\` wrote to cdk.outputs.json
  --json        one JSON object per file instead of the chart
  -h, --help    this text`;

interface Answer {
  digit: number;
  confidence: number;
  probabilities: number[];
  modelVersion: string;
}

export function chart(file: string, answer: Answer): string {
  const lines = [`${file}: ${answer.digit}  (${(answer.confidence * 100).toFixed(1)}%, model ${answer.modelVersion})`];
  answer.probabilities.forEach((p, digit) => {
    const bar = '█'.repeat(Math.round(p * 40));
    lines.push(
      `  ${digit} ${bar.padEnd(40)} ${(p * 100).toFixed(1).padStart(5)}%${digit === answer.digit ? '  ◀' : ''}`,
    );
  });
  return lines.join('\n');
}

async function predictFile(endpoint: string, file: string): Promise<Answer> {
  const bytes = await readFile(file);
  let response: Response;
  try {
    response = await fetch(`${endpoint}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: bytes.toString('base64') }),
    });
  } catch (error) {
    throw new Error(
      `cannot reach ${endpoint}: ${(error as Error).cause ?? (error as Error).message}. Is \`npm start\` running?`,
    );
  }
  const body = (await response.json().catch(() => ({}))) as Answer & { error?: { message: string } };
  if (!response.ok) throw new Error(`${response.status}: ${body.error?.message ?? response.statusText}`);
  return body;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: {
      url: { type: 'string' },
      deployed: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
  });
  if (values.help || positionals.length === 0) {
    (values.help ? process.stdout : process.stderr).write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const endpoint = await resolveEndpoint({ url: values.url, deployed: values.deployed });
  let failures = 0;
  for (const file of positionals) {
    try {
      const answer = await predictFile(endpoint, file);
      process.stdout.write(`${values.json ? JSON.stringify({ file, ...answer }) : chart(file, answer)}\n`);
    } catch (error) {
      failures++;
      const message = (error as Error).message;
      if (values.json) process.stdout.write(`${JSON.stringify({ file, error: message })}\n`);
      else process.stderr.write(`${file}: ${message}\n`);
    }
  }
  return failures === 0 ? 0 : 1;
}

runCli(main);
