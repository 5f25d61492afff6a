import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { LATEST_KEY, ModelStore } from '#lib/storage/store';
import { repoRoot, testBucket } from './support/env.ts';
import { storeTrainedModel } from './support/service.ts';

/** The predict handler in a child process against the bucket `s3` names; its stderr lines are collected as they come. */
async function startServer(s3: Record<string, string>) {
  const child = spawn(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), path.join(repoRoot, 'test', 'support', 'predict-process.ts')],
    {
      cwd: repoRoot,
      env: { ...process.env, ...s3, MODEL_REFRESH_SECONDS: '0', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  after(() => {
    if (child.exitCode === null) child.kill();
  });
  const lines: string[] = [];
  const stderr = createInterface({ input: child.stderr! });
  stderr.on('line', (line) => lines.push(line));
  const [first] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const { url } = JSON.parse(first) as { url: string };
  const health = async () => {
    const response = await fetch(`${url}/health`);
    return {
      status: response.status,
      body: (await response.json()) as { modelVersion?: string; error?: { code: string } },
    };
  };
  /** Sends requests (each starts a pointer refresh) until a new stderr line satisfies `match`; waits on lines, not time. */
  async function until(match: (line: string) => boolean): Promise<void> {
    let seen = lines.length;
    for (;;) {
      await health();
      while (seen < lines.length) if (match(lines[seen++]!)) return;
      if (child.exitCode !== null)
        throw new Error(`the server exited (${child.exitCode}):\n${lines.slice(-5).join('\n')}`);
      await once(stderr, 'line');
    }
  }
  return { child, lines, health, until };
}

describe('a malformed serving pointer never takes a server process down', () => {
  test('null, {} and garbage in latest.json: the process keeps serving, logs no unhandled rejection, and follows a valid pointer again', {
    timeout: 120_000,
  }, async () => {
    const bucket = await testBucket();
    const store = new ModelStore(bucket.objects);
    const first = await storeTrainedModel(store);
    await store.promote(first);
    const server = await startServer(bucket.env);
    assert.deepEqual((await server.health()).body.modelVersion, first);

    for (const body of ['null', '{}', 'garbage{']) {
      await bucket.objects.put(LATEST_KEY, body);
      await server.until((line) => line.includes('"the model pointer is invalid"'));
      const { status, body: health } = await server.health();
      assert.equal(status, 200, `still serving with ${body} as the pointer`);
      assert.equal(health.modelVersion, first);
    }

    const second = await storeTrainedModel(store);
    await store.promote(second);
    await server.until((line) => line.includes('"model loaded"') && line.includes(second));
    assert.equal((await server.health()).body.modelVersion, second);
    assert.equal(server.child.exitCode, null, 'the process is alive');
    assert.ok(!server.lines.some((line) => /unhandled/i.test(line)), 'no unhandled rejection was reported');
  });
});
