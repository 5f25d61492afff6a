import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Jimp } from 'jimp';
import { writeNumber } from '../scripts/bench/numbers.ts';
import { runScript, type ScriptResult } from './support/cli.ts';
import { tempDir, testMnist } from './support/env.ts';
import { startService, type TestService } from './support/service.ts';

let service: TestService;
let dir: string;
let label: number;
let numberText: string;

before(async () => {
  service = await startService();
  dir = await tempDir();
  const { images, labels } = (await testMnist()).test;
  label = labels[3]!;
  const image = new Jimp({ width: 112, height: 112, color: 0xffffffff });
  for (let y = 0; y < 112; y++)
    for (let x = 0; x < 112; x++) {
      const v = 255 - images[3 * 784 + Math.floor(y / 4) * 28 + Math.floor(x / 4)]!;
      image.bitmap.data.set([v, v, v, 255], (y * 112 + x) * 4);
    }
  await writeFile(path.join(dir, 'digit.png'), await image.getBuffer('image/png'));
  await writeFile(path.join(dir, 'notes.txt'), 'not an image');
  const written = await writeNumber((await testMnist()).test, 3, 'gaps', 'canvas', 7);
  numberText = written.text;
  await writeFile(path.join(dir, 'number.png'), written.image);
  await writeFile(
    path.join(dir, 'blank.png'),
    await new Jimp({ width: 40, height: 40, color: 0xffffffff }).getBuffer('image/png'),
  );
});
after(() => service.close());

const predict = (args: string[]): Promise<ScriptResult> => runScript('scripts/predict.ts', args, { cwd: dir });

describe('npm run predict', () => {
  test('prints the digit, confidence and a bar chart per file', async () => {
    const result = await predict(['digit.png', '--url', service.url]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^digit\\.png: ${label}  \\(\\d+\\.\\d%, model ${service.version}\\)`));
    assert.equal(result.stdout.trim().split('\n').length, 11);
    assert.match(result.stdout, /◀/);
  });

  test('--json prints one object per file, errors included, and exits 1 when any file fails', async () => {
    const result = await predict(['digit.png', 'notes.txt', '--json', '--url', service.url]);
    assert.equal(result.code, 1);
    const [ok, failed] = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.equal(ok.digit, label);
    assert.equal(failed.file, 'notes.txt');
    assert.match(failed.error, /^415: .*not .*image/i);
  });

  test('--number prints the number, then each digit with its confidence and box', async () => {
    const result = await predict(['number.png', '--number', '--url', service.url]);
    assert.equal(result.code, 0, result.stderr);
    const [first, ...digits] = result.stdout.trim().split('\n');
    assert.match(first!, new RegExp(`^number\\.png: ${numberText}  \\(\\d+\\.\\d%, model ${service.version}\\)$`));
    assert.equal(digits.length, numberText.length);
    digits.forEach((line, i) =>
      assert.match(line, new RegExp(`^  ${numberText[i]}  +\\d+\\.\\d%  at \\d+,\\d+  \\d+×\\d+$`)),
    );
  });

  test('an image without ink says so instead of a digit', async () => {
    const result = await predict(['blank.png', '--url', service.url]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^blank\.png: no digit: .+ \(no_ink\)\n$/);
  });

  test('says how to start the service when nothing answers', async () => {
    const result = await predict(['digit.png', '--url', 'http://127.0.0.1:9']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cannot reach http:\/\/127\.0\.0\.1:9.*npm start/);
  });

  test('a missing file is reported by name', async () => {
    const result = await predict(['missing.png', '--url', service.url]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /missing\.png: .*ENOENT/);
  });

  test('--deployed without outputs says to deploy first', async () => {
    const result = await predict(['digit.png', '--deployed']);
    assert.equal(result.code, 1);
    assert.equal(result.stderr, '--deployed needs cdk.outputs.json: run `npm run deploy` first, or pass --url\n');
  });

  test('no files prints the usage and exits 2', async () => {
    const result = await predict([]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Usage: npm run predict/);
  });
});
