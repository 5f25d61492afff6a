import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planStartup, type StoredModel } from '../scripts/local/startup.ts';

const mlp: StoredModel = { version: '20261126T000000Z-mlp', arch: 'mlp', accuracy: 0.9845, epochs: 10 };
const cnn = (accuracy: number, epochs: number, version = '20261126T010000Z-cnn'): StoredModel => ({
  version,
  arch: 'cnn',
  accuracy,
  epochs,
});

describe('npm start: which model to serve', () => {
  test('with nothing serving, trains the requested architecture (mlp by default) past the gate', () => {
    assert.deepEqual(planStartup({ epochs: 10 }, undefined, []), { action: 'train', arch: 'mlp', force: true });
    assert.deepEqual(planStartup({ arch: 'cnn', epochs: 1 }, undefined, []), {
      action: 'train',
      arch: 'cnn',
      force: true,
    });
  });

  test('serves what is promoted when --arch is absent or names its architecture', () => {
    const serving = cnn(0.993, 15);
    assert.deepEqual(planStartup({ epochs: 10 }, serving, []), { action: 'serve', version: serving.version });
    assert.deepEqual(planStartup({ arch: 'cnn', epochs: 1 }, serving, []), {
      action: 'serve',
      version: serving.version,
    });
  });

  test('trains the requested architecture when another one is serving; the gate decides the promotion', () => {
    assert.deepEqual(planStartup({ arch: 'cnn', epochs: 10 }, mlp, [mlp]), {
      action: 'train',
      arch: 'cnn',
      force: false,
    });
  });

  test('promotes the best stored version of the requested architecture that passes the gate instead of training', () => {
    const stored = [
      mlp,
      cnn(0.9928, 12, '20261126T011132Z-cnn'),
      cnn(0.993, 15, '20261126T011638Z-cnn'),
      cnn(0.9897, 1, '20261126T004226Z-cnn'),
    ];
    assert.deepEqual(planStartup({ arch: 'cnn', epochs: 10 }, mlp, stored), {
      action: 'promote',
      version: '20261126T011638Z-cnn',
    });
  });

  test('keeps the serving model rather than repeating a training the gate already refused', () => {
    const refused = cnn(0.9897, 1);
    const plan = planStartup({ arch: 'cnn', epochs: 1 }, mlp, [mlp, refused]);
    assert.equal(plan.action, 'keep');
    assert.equal(plan.action === 'keep' && plan.refused, refused.version);
    assert.match(plan.action === 'keep' ? plan.reasons.join() : '', /below the minimum 99\.00% for cnn/);
  });

  test('trains again when asked for more epochs than the refused version had', () => {
    assert.deepEqual(planStartup({ arch: 'cnn', epochs: 10 }, mlp, [mlp, cnn(0.9897, 1)]), {
      action: 'train',
      arch: 'cnn',
      force: false,
    });
  });

  test('a stored mlp more than 0.2 points below a serving cnn is not promoted over it', () => {
    const serving = cnn(0.993, 15);
    const plan = planStartup({ arch: 'mlp', epochs: 10 }, serving, [serving, mlp]);
    assert.equal(plan.action, 'keep');
    assert.match(plan.action === 'keep' ? plan.reasons.join() : '', /more than 0\.2 points below the serving model/);
  });

  test('MIN_ACCURACY overrides the per-architecture minimum', () => {
    assert.deepEqual(planStartup({ arch: 'cnn', epochs: 1 }, mlp, [mlp, cnn(0.9897, 1)], 0.98), {
      action: 'promote',
      version: '20261126T010000Z-cnn',
    });
  });
});
