/**
 * `npm run predict -- <image ...> [--number] [--url URL | --deployed] [--json]`:
 * sends image files to the service and prints each digit with a small bar
 * chart and whether it looks like a digit at all, or with `--number` the
 * number each image holds, digit by digit.
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
  --number      read each image as a number written left to right
  --json        one JSON object per file instead of the chart
  -h, --help    this text`;

/** A digit mode answer; `digit` is null when the image has no ink. */
type DigitAnswer = { modelVersion: string; message?: string } & (
  | { digit: number; confidence: number; probabilities: number[]; isDigit: boolean; reason?: string }
  | { digit: null; isDigit: false; reason: 'no_ink' }
);

interface NumberAnswer {
  number: string;
  confidence: number;
  digits: { digit: number; confidence: number; box: [number, number, number, number] }[];
  modelVersion: string;
}

const percent = (p: number) => `${(p * 100).toFixed(1)}%`;

export function chart(file: string, answer: DigitAnswer): string {
  if (answer.digit === null) return `${file}: no digit: ${answer.message} (${answer.reason})`;
  const lines = [`${file}: ${answer.digit}  (${percent(answer.confidence)}, model ${answer.modelVersion})`];
  if (!answer.isDigit) lines.push(`  not a digit (${answer.reason}): ${answer.message}`);
  answer.probabilities.forEach((p, digit) => {
    const bar = '█'.repeat(Math.round(p * 40));
    lines.push(
      `  ${digit} ${bar.padEnd(40)} ${(p * 100).toFixed(1).padStart(5)}%${digit === answer.digit ? '  ◀' : ''}`,
    );
  });
  return lines.join('\n');
}

/** The number, then each digit with its confidence and where it is in the image. */
export function numberLines(file: string, answer: NumberAnswer): string {
  const lines = [`${file}: ${answer.number}  (${percent(answer.confidence)}, model ${answer.modelVersion})`];
  for (const { digit, confidence, box } of answer.digits) {
    const [x, y, w, h] = box;
    lines.push(`  ${digit}  ${percent(confidence).padStart(6)}  at ${x},${y}  ${w}×${h}`);
  }
  return lines.join('\n');
}

async function predictFile(endpoint: string, file: string, number: boolean): Promise<DigitAnswer | NumberAnswer> {
  const bytes = await readFile(file);
  let response: Response;
  try {
    response = await fetch(`${endpoint}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: bytes.toString('base64'), ...(number ? { mode: 'number' } : {}) }),
    });
  } catch (error) {
    throw new Error(
      `cannot reach ${endpoint}: ${(error as Error).cause ?? (error as Error).message}. Is \`npm start\` running?`,
    );
  }
  const body = (await response.json().catch(() => ({}))) as (DigitAnswer | NumberAnswer) & {
    error?: { message: string };
  };
  if (!response.ok) throw new Error(`${response.status}: ${body.error?.message ?? response.statusText}`);
  return body;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: {
      url: { type: 'string' },
      deployed: { type: 'boolean', default: false },
      number: { type: 'boolean', default: false },
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
      const answer = await predictFile(endpoint, file, values.number);
      const text = 'number' in answer ? numberLines(file, answer) : chart(file, answer);
      process.stdout.write(`${values.json ? JSON.stringify({ file, ...answer }) : text}\n`);
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
