/**
 * The local stack's single entry: operator routes (/train, /promote) go to the
 * retrain handler behind a bearer token — locally there is no IAM to stand in
 * for — and everything else goes to the predict handler.
 */
import { timingSafeEqual } from 'node:crypto';
import type { LambdaLike } from './http-adapter.ts';

export const OPERATOR_PATHS = /^\/(train(\/[^/]*)?|promote)$/;

function tokenMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer (.+)$/.exec(header ?? '');
  if (!match) return false;
  const given = Buffer.from(match[1]!);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function localHandler(options: { predict: LambdaLike; operator: LambdaLike; token: string }): LambdaLike {
  return async (event, context) => {
    if (!OPERATOR_PATHS.test(event.rawPath)) return options.predict(event, context);
    if (!tokenMatches(event.headers?.authorization, options.token)) {
      return {
        statusCode: 401,
        headers: { 'content-type': 'application/json; charset=utf-8', 'www-authenticate': 'Bearer' },
        body: JSON.stringify({
          error: { code: 'unauthorized', message: 'operator routes need "Authorization: Bearer <token>"; npm start prints the token and writes it to .data/local-token' },
        }),
      };
    }
    return options.operator(event, context);
  };
}
