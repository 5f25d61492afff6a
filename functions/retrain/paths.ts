/**
 * The operator API's paths, as the stack's API Gateway routes name them. Apart
 * from the app so that the local stack can send these paths to the operator
 * without loading the Batch client into every server process.
 */
export const OPERATOR_PATHS = ['/train', '/train/{jobId}', '/promote'] as const;
export type OperatorPath = (typeof OPERATOR_PATHS)[number];
