/**
 * The local stack's single entry: operator routes (/train, /promote) go to the
 * retrain handler behind a bearer token — locally there is no IAM to stand in
 * for —, /feedback to the feedback handler (its own function in the cloud),
 * and everything else to the predict handler.
 */
import { timingSafeEqual } from 'node:crypto';
import { UnauthorizedError } from '#lib/errors';
import { errorResult, pathMatcher } from '#lib/http';
import { OPERATOR_PATHS } from '../../functions/retrain/paths.ts';
import type { LambdaLike } from './http-adapter.ts';

const isOperatorPath = pathMatcher(OPERATOR_PATHS);

function tokenMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer (.+)$/.exec(header ?? '');
  if (!match) return false;
  const given = Buffer.from(match[1]!);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function localHandler(options: {
  predict: LambdaLike;
  feedback: LambdaLike;
  operator: LambdaLike;
  token: string;
}): LambdaLike {
  return async (event, context) => {
    if (event.rawPath === '/feedback') return options.feedback(event, context);
    if (!isOperatorPath(event.rawPath)) return options.predict(event, context);
    if (!tokenMatches(event.headers?.authorization, options.token)) {
      return errorResult(
        new UnauthorizedError(
          'operator routes need "Authorization: Bearer <token>"; npm start prints the token and writes it to .data/local-token',
        ),
      );
    }
    return options.operator(event, context);
  };
}
