/**
 * Placeholder on h/infra only, so the stack has an entry to bundle: the
 * live-summary function (issue 13) replaces this file, with the same export.
 */
export const handler = async (_event: unknown): Promise<never> => {
  throw new Error('functions/live/handler.ts is a placeholder; the live-summary function replaces it');
};
