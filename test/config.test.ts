import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readConfig } from '#lib/config';
import { ConfigError } from '#lib/errors';

const ENDPOINT = 'http://127.0.0.1:4569';

describe('readConfig: the key pair for S3_ENDPOINT', () => {
  test('reads S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY set with S3_ENDPOINT', () => {
    const config = readConfig({ BUCKET: 'b', S3_ENDPOINT: ENDPOINT, S3_ACCESS_KEY_ID: 'LOCALKEY', S3_SECRET_ACCESS_KEY: 'secret' });
    assert.deepEqual(config.s3Credentials, { accessKeyId: 'LOCALKEY', secretAccessKey: 'secret' });
  });

  test('leaves it unset when neither is set, so on AWS the SDK finds the role’s credentials', () => {
    assert.equal(readConfig({ BUCKET: 'b' }).s3Credentials, undefined);
    assert.equal(readConfig({ BUCKET: 'b', S3_ENDPOINT: ENDPOINT }).s3Credentials, undefined);
  });

  test('refuses half a pair, and a pair without S3_ENDPOINT', () => {
    const refused = (env: Record<string, string>, message: RegExp) =>
      assert.throws(() => readConfig({ BUCKET: 'b', ...env }), (error: Error) => error instanceof ConfigError && message.test(error.message));
    refused({ S3_ENDPOINT: ENDPOINT, S3_ACCESS_KEY_ID: 'LOCALKEY' }, /go together/);
    refused({ S3_ENDPOINT: ENDPOINT, S3_SECRET_ACCESS_KEY: 'secret' }, /go together/);
    refused({ S3_ACCESS_KEY_ID: 'LOCALKEY', S3_SECRET_ACCESS_KEY: 'secret' }, /set S3_ENDPOINT too/);
  });
});
