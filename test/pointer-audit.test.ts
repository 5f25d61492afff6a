import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { PointerChangedError, PointerInvalidError } from '#lib/errors';
import { AUDIT_PREFIX, type AuditRecord } from '#lib/storage/audit';
import { LATEST_KEY, ModelStore, parsePointer } from '#lib/storage/store';
import { runScript } from './support/cli.ts';
import { tempDir, testBucket, type TestBucket } from './support/env.ts';
import { storeTrainedModel } from './support/service.ts';

describe('the pointer audit trail on the embedded S3', () => {
  let bucket: TestBucket;
  let store: ModelStore;
  let first: string;
  let second: string;
  let third: string;
  const at = (minute: number) => new Date(Date.UTC(2026, 11, 3, 9, minute));

  before(async () => {
    bucket = await testBucket();
    store = new ModelStore(bucket.objects);
    first = await storeTrainedModel(store);
    second = await storeTrainedModel(store);
    third = await storeTrainedModel(store);
  });

  const records = async () => (await store.history()) as AuditRecord[];

  test('records each change, oldest first, with who, from, to and why', async () => {
    await store.promote(first, { now: at(0), by: { actor: 'training', reason: 'passed the quality gate' } });
    await store.setCandidate({ version: second, mode: 'canary', percent: 50 }, { now: at(1) });
    await store.promote(second, { now: at(2), by: { actor: 'schedule', reason: 'agrees on 99%' } });
    await store.promote(first, { now: at(3), by: { actor: 'rollback', reason: 'Errors in ALARM' } });
    const candidate = { version: second, mode: 'canary', percent: 50, since: at(1).toISOString() };
    assert.deepEqual(await records(), [
      {
        time: at(0).toISOString(),
        actor: 'training',
        action: 'promote',
        from: null,
        to: first,
        reason: 'passed the quality gate',
      },
      {
        time: at(1).toISOString(),
        actor: 'operator',
        action: 'set-candidate',
        from: first,
        to: first,
        candidate: { from: null, to: candidate },
        reason: null,
      },
      {
        time: at(2).toISOString(),
        actor: 'schedule',
        action: 'promote',
        from: first,
        to: second,
        candidate: { from: candidate, to: null },
        reason: 'agrees on 99%',
      },
      {
        time: at(3).toISOString(),
        actor: 'rollback',
        action: 'rollback',
        from: second,
        to: first,
        reason: 'Errors in ALARM',
      },
    ]);
    const keys = await bucket.objects.list(AUDIT_PREFIX);
    assert.match(keys[0]!, /^audit\/pointer\/2026-12-03\/20261203T090000\.000Z-\d{6}-[0-9a-f]{8}\.json$/);
  });

  test('stamps the pointer with the time of its change', async () => {
    assert.equal((await store.latest())?.changedAt, at(3).toISOString());
  });

  test('writes no record for a write that changed nothing', async () => {
    const before = (await records()).length;
    await store.clearCandidate({ now: at(4) });
    await store.setPinned(false, { now: at(4) });
    assert.equal((await records()).length, before);
  });

  test('writes no record when the conditional write loses the race', async () => {
    const basis = await store.pointerState();
    await store.setCandidate({ version: third, mode: 'shadow' }, { now: at(5) });
    const before = (await records()).length;
    await assert.rejects(
      store.promote(third, { basedOn: basis, now: at(6), by: { actor: 'schedule', reason: 'r' } }),
      PointerChangedError,
    );
    assert.equal((await records()).length, before);
  });

  test('pins and unpins the serving version, each a record; a promotion pins only when asked', async () => {
    const pinned = await store.setPinned(true, { now: at(7), by: { actor: 'operator', reason: 'holiday freeze' } });
    assert.equal(pinned.pinned, true);
    assert.deepEqual(parsePointer((await bucket.objects.get(LATEST_KEY))!.body).pointer, pinned);
    await store.setPinned(false, { now: at(8) });
    assert.equal((await store.latest())?.pinned, undefined);
    await store.promote(second, { now: at(9), pin: true });
    assert.equal((await store.latest())?.pinned, true);
    await store.promote(third, { now: at(10) });
    assert.equal((await store.latest())?.pinned, undefined);
    const actions = (await records()).slice(-4).map((r) => [r.action, r.reason]);
    assert.deepEqual(actions, [
      ['pin', 'holiday freeze'],
      ['unpin', null],
      ['promote', null],
      ['promote', null],
    ]);
  });

  test('promoting a candidate older than the serving version is a promotion; going back to it otherwise is a rollback', async () => {
    await store.promote(third, { now: at(11) });
    await store.setCandidate({ version: first, mode: 'shadow' }, { now: at(12) });
    await store.promote(first, { now: at(13), by: { actor: 'schedule', reason: 'agrees on 99%' } });
    await store.promote(third, { now: at(14) });
    await store.promote(first, { now: at(15) });
    assert.deepEqual(
      (await records()).slice(-3).map((r) => [r.action, r.from, r.to]),
      [
        ['promote', third, first],
        ['promote', first, third],
        ['rollback', third, first],
      ],
    );
  });

  for (const reason of ['', 'x'.repeat(501)]) {
    test(`refuses a reason of ${reason.length} characters before writing anything`, async () => {
      const before = await store.pointerState();
      await assert.rejects(store.setPinned(true, { by: { actor: 'operator', reason } }), RangeError);
      assert.equal((await store.pointerState()).etag, before.etag);
    });
  }

  for (const [what, field] of [
    ['pinned that is not true', { pinned: 'yes' }],
    ['changedAt that is not a time', { changedAt: 'yesterday' }],
  ] as const) {
    test(`a pointer with a ${what} is invalid`, () => {
      const pointer = { version: first, promotedAt: at(0).toISOString(), accuracy: 0.9, arch: 'mlp', ...field };
      assert.throws(() => parsePointer(Buffer.from(JSON.stringify(pointer))), PointerInvalidError);
    });
  }

  test('npm run models -- --history lists the changes newest last, as a table and as JSON', async () => {
    const cwd = await tempDir();
    const env = { PATH: process.env.PATH ?? '', ...bucket.env, DATA_DIR: path.join(cwd, '.data') };
    const table = await runScript('scripts/models.ts', ['--history'], { cwd, env });
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trim().split('\n');
    assert.equal(lines.length, (await records()).length);
    assert.equal(lines[0], `${at(0).toISOString()}  training  promote          — → ${first}: passed the quality gate`);
    assert.match(lines[3]!, new RegExp(`rollback  rollback         ${second} → ${first}: Errors in ALARM$`));
    const json = await runScript('scripts/models.ts', ['--history', '--json'], { cwd, env });
    assert.deepEqual(JSON.parse(json.stdout), await store.history());
  });

  test('lists a record that is not one with its problem, in its place', async () => {
    const key = `${AUDIT_PREFIX}2026-12-03/20261203T100000.000Z-00000000.json`;
    await bucket.objects.put(key, '{"time": "then"}', 'application/json');
    const history = await store.history();
    assert.deepEqual(history.at(-1), { key, problem: 'has no time' });
  });
});
