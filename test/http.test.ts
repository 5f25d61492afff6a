/**
 * The HTTP edge shared by the prediction API, the operator API and the local
 * stack: one router (404, 405 with Allow) and one JSON body reader, so the same
 * mistake gets the same status and code on every route, whether the request
 * comes as a Lambda event or over HTTP through the local adapter.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { UnavailableError } from '#lib/errors';
import { fieldError, json, pathMatcher, readJsonObject, router, type Result } from '#lib/http';
import { createLogger } from '#lib/log';
import { noMetrics } from '#lib/metrics';
import { ModelCache } from '#lib/model-cache';
import { MAX_BODY_BYTES as PREDICT_MAX_BYTES } from '#lib/predict-request';
import { ModelStore } from '#lib/storage/store';
import { MAX_BODY_BYTES as FEEDBACK_MAX_BYTES, makeFeedbackHandler } from '../functions/feedback/app.ts';
import { makeHandler as makePredictHandler } from '../functions/predict/app.ts';
import { makeHandler as makeOperatorHandler, MAX_BODY_BYTES as OPERATOR_MAX_BYTES } from '../functions/retrain/app.ts';
import { OPERATOR_PATHS } from '../functions/retrain/paths.ts';
import { serveHandler, type LambdaLike, type ServedHandler } from '../scripts/local/http-adapter.ts';
import { localHandler } from '../scripts/local/routes.ts';
import { apiEvent } from './support/events.ts';
import { testBucket } from './support/env.ts';

const silent = createLogger({ service: 'test' }, () => {});
const parse = (result: { body?: string }) => JSON.parse(result.body!);

describe('router', () => {
  const answer =
    (name: string) => async (_event: APIGatewayProxyEventV2, _log: unknown, params: Record<string, string>) =>
      json(200, { name, params });
  const route = router({
    '/things': { GET: answer('list'), POST: answer('create') },
    '/things/{id}': { GET: answer('one') },
  });
  const call = (method: string, path: string) => route(apiEvent(method, path), silent, noMetrics.begin());

  test('runs the handler for the path and method, with the path parameters', async () => {
    assert.deepEqual(parse(await call('GET', '/things/42')), { name: 'one', params: { id: '42' } });
    assert.deepEqual(parse(await call('POST', '/things')), { name: 'create', params: {} });
  });

  test('refuses an unknown path with 404 route_not_found naming the request', async () => {
    for (const path of ['/nope', '/things/', '/things/1/2', '/THINGS', '/things.']) {
      await assert.rejects(call('GET', path), {
        status: 404,
        code: 'route_not_found',
        message: `no route for GET ${path}`,
      });
    }
  });

  test('refuses a known path with the wrong method with 405 and the methods it allows', async () => {
    await assert.rejects(call('DELETE', '/things'), { status: 405, code: 'method_not_allowed', allow: 'GET, POST' });
    await assert.rejects(call('POST', '/things/1'), { status: 405, code: 'method_not_allowed', allow: 'GET' });
  });

  test('pathMatcher says which paths the operator routes answer', () => {
    const isOperatorPath = pathMatcher(OPERATOR_PATHS);
    assert.deepEqual(
      ['/train', '/train/abc', '/promote', '/train/', '/train/a/b', '/predict', '/promote/x'].map(isOperatorPath),
      [true, true, true, false, false, false, false],
    );
  });
});

describe('readJsonObject', () => {
  const rules = { maxBytes: 64, fields: ['a', 'b'], example: '{"a": 1}' };

  test('returns the object when it is JSON, within the limit and has only allowed fields', () => {
    assert.deepEqual(readJsonObject({ body: '{"a": 1, "b": [2]}' }, rules), { a: 1, b: [2] });
    assert.deepEqual(
      readJsonObject({ body: Buffer.from('{"b": "x"}').toString('base64'), isBase64Encoded: true }, rules),
      { b: 'x' },
    );
  });

  test('counts a base64 body at its decoded size', () => {
    const body = JSON.stringify({ a: 'x'.repeat(rules.maxBytes - 10) });
    assert.ok(Buffer.from(body).toString('base64').length > rules.maxBytes);
    assert.ok(body.length <= rules.maxBytes);
    assert.deepEqual(
      readJsonObject({ body: Buffer.from(body).toString('base64'), isBase64Encoded: true }, rules),
      JSON.parse(body),
    );
  });

  test('names at most five unknown fields, each cut to 32 characters', () => {
    const body = JSON.stringify(Object.fromEntries(['x'.repeat(40), 'c', 'd', 'e', 'f', 'g'].map((k) => [k, 1])));
    assert.throws(() => readJsonObject({ body }, { ...rules, maxBytes: 1024 }), {
      code: 'unknown_field',
      message: `unknown fields "${'x'.repeat(32)}…", "c", "d", "e", "f"; allowed: a, b`,
    });
  });
});

describe('fieldError', () => {
  test('names a missing field with missing_field and a wrong one with invalid_<field in snake case>', () => {
    assert.throws(
      () => {
        throw fieldError('batchSize', 'a number', undefined);
      },
      { status: 400, code: 'missing_field', message: '"batchSize" is missing: it must be a number' },
    );
    assert.equal(
      fieldError('batchSize', 'a number', 'x'.repeat(100)).message,
      `"batchSize" must be a number; got "${'x'.repeat(32)}…"`,
    );
    assert.equal(fieldError('batchSize', 'a number', null).code, 'invalid_batch_size');
  });

  test('describes a value nested 100,000 deep without walking it (JSON.stringify overflows the stack on it)', () => {
    const deep = JSON.parse('['.repeat(100_000) + ']'.repeat(100_000));
    assert.equal(
      fieldError('images', 'an array of strings', deep).message,
      '"images" must be an array of strings; got an array of 1',
    );
    assert.equal(fieldError('arch', 'a name', { a: deep }).message, '"arch" must be a name; got an object');
  });
});

/**
 * Each route of both APIs with what its own fields need for the field-level
 * mistakes: nothing about a route may make a body-level mistake look different.
 */
const ROUTES = [
  {
    path: '/predict',
    maxBytes: PREDICT_MAX_BYTES,
    missing: {},
    wrongType: { pixels: new Array(784).fill(0), includeInput: 'yes' },
    field: 'includeInput',
  },
  {
    path: '/train',
    maxBytes: OPERATOR_MAX_BYTES,
    missing: { epochs: 3 },
    wrongType: { arch: 'mlp', epochs: '10' },
    field: 'epochs',
  },
  { path: '/promote', maxBytes: OPERATOR_MAX_BYTES, missing: {}, wrongType: { version: 42 }, field: 'version' },
  {
    path: '/feedback',
    maxBytes: FEEDBACK_MAX_BYTES,
    missing: { label: 3 },
    wrongType: { predictionId: '20261203081500123-0123456789abcdef01234567', label: 'seven' },
    field: 'label',
  },
];
type RouteCase = (typeof ROUTES)[number];

/** One byte over the route's limit, as a JSON object, so only the size is wrong with it. */
const overLimit = (maxBytes: number) => JSON.stringify({ pad: 'x'.repeat(maxBytes - 10) });

const MISTAKES: {
  what: string;
  body: (route: RouteCase) => string | undefined;
  status: number;
  code: (route: RouteCase) => string;
  message?: (route: RouteCase) => RegExp;
}[] = [
  {
    what: 'no body',
    body: () => undefined,
    status: 400,
    code: () => 'empty_body',
    message: () => /^the request body is empty: send \{/,
  },
  { what: 'text that is not JSON', body: () => '{"image": ', status: 400, code: () => 'invalid_json' },
  {
    what: 'a JSON array',
    body: () => '[1, 2]',
    status: 400,
    code: () => 'invalid_body',
    message: () => /^the body must be a JSON object such as \{/,
  },
  { what: 'JSON null', body: () => 'null', status: 400, code: () => 'invalid_body' },
  { what: 'a JSON string', body: () => '"hello"', status: 400, code: () => 'invalid_body' },
  {
    what: 'an unknown field',
    body: () => '{"colour": "red"}',
    status: 400,
    code: () => 'unknown_field',
    message: () => /^unknown field "colour"; allowed: /,
  },
  {
    what: 'a required field left out',
    body: (r) => JSON.stringify(r.missing),
    status: 400,
    code: () => 'missing_field',
  },
  {
    what: 'a field of the wrong type',
    body: (r) => JSON.stringify(r.wrongType),
    status: 400,
    code: (r) => `invalid_${r.field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`,
    message: (r) => new RegExp(`^"${r.field}" must be .+; got `),
  },
  {
    what: "a body one byte over the route's limit",
    body: (r) => overLimit(r.maxBytes + 1),
    status: 413,
    code: () => 'body_too_large',
    message: (r) => new RegExp(`^the request body is over ${r.maxBytes} bytes$`),
  },
];

describe('the same mistake gets the same status and code on every route', () => {
  const token = 'http-edge-test-token';
  let predict: LambdaLike;
  let operator: LambdaLike;
  let feedback: LambdaLike;
  let served: ServedHandler;

  const unreachableBatch = async (): Promise<never> => {
    throw new UnavailableError('a malformed request must not reach AWS Batch');
  };

  before(async () => {
    // Real storage with no model in it: a request that got past the edge would be a 503, not the 4xx expected.
    const store = new ModelStore((await testBucket()).objects);
    predict = makePredictHandler({
      cache: new ModelCache({ store, refreshSeconds: 60, logger: silent }),
      logger: silent,
      backendReady: async () => undefined,
      page: async () => '',
    });
    operator = makeOperatorHandler({
      batch: { submit: unreachableBatch, describe: unreachableBatch },
      store,
      target: {
        jobQueue: 'arn:aws:batch:eu-west-1:123456789012:job-queue/q',
        jobDefinition: 'arn:aws:batch:eu-west-1:123456789012:job-definition/d',
      },
      logger: silent,
    });
    feedback = makeFeedbackHandler({
      objects: {
        put: async () => {
          throw new UnavailableError('a malformed request must not reach the bucket');
        },
      },
      logger: silent,
      throttle: () => {},
    });
    served = await serveHandler(localHandler({ predict, feedback, operator, token }), {
      host: '127.0.0.1',
      port: 0,
      onError: (error) => assert.fail(String(error)),
    });
  });
  after(() => served.close());

  const handlerFor = (path: string) => (path === '/predict' ? predict : path === '/feedback' ? feedback : operator);

  for (const mistake of MISTAKES) {
    for (const route of ROUTES) {
      const status = mistake.status;
      const code = mistake.code(route);
      const check = (result: Pick<Result, 'statusCode' | 'body'>) => {
        assert.equal(result.statusCode, status);
        const { error } = parse(result);
        assert.equal(error.code, code);
        if (mistake.message) assert.match(error.message, mistake.message(route));
      };

      test(`${mistake.what} to POST ${route.path} is ${status} ${code} as a Lambda event`, async () => {
        const body = mistake.body(route);
        check(
          (await handlerFor(route.path)(apiEvent('POST', route.path, { body, contentType: 'application/json' }), {
            awsRequestId: 'r',
          })) as Result,
        );
      });

      test(`${mistake.what} to POST ${route.path} is ${status} ${code} over HTTP through the local stack`, async () => {
        const body = mistake.body(route);
        const response = await fetch(served.url + route.path, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          ...(body === undefined ? {} : { body }),
        });
        check({ statusCode: response.status, body: await response.text() });
      });
    }
  }

  test('an operator route without the token is 401 unauthorized with WWW-Authenticate, in the same error shape', async () => {
    const response = await fetch(`${served.url}/train`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(response.status, 401);
    assert.equal(response.headers.get('www-authenticate'), 'Bearer');
    assert.equal((await response.json()).error.code, 'unauthorized');
  });

  test('an unknown path and a wrong method are 404 and 405 with Allow on both APIs', async () => {
    for (const [path, allow] of [
      ['/predict', 'POST'],
      ['/train', 'POST'],
      ['/promote', 'POST'],
      ['/train/8c3c6f1e-2b7d-4d1a-9a55-1f2e3d4c5b6a', 'GET'],
    ] as const) {
      const result = (await handlerFor(path)(apiEvent('DELETE', path), { awsRequestId: 'r' })) as Result;
      assert.equal(result.statusCode, 405);
      assert.equal(result.headers.allow, allow);
      assert.equal(parse(result).error.code, 'method_not_allowed');
    }
    for (const handler of [predict, operator]) {
      const result = (await handler(apiEvent('GET', '/nope'), { awsRequestId: 'r' })) as Result;
      assert.equal(result.statusCode, 404);
      assert.equal(parse(result).error.code, 'route_not_found');
    }
  });
});
