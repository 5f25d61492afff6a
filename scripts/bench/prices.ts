/**
 * The AWS list prices the cost bench (`npm run bench -- cost`) multiplies by,
 * in one dated table. Region us-east-1, on-demand, first pricing tier, free
 * tiers ignored.
 *
 * Written on 2026-12-03 from the public list prices as the author knew them,
 * NOT read from the pages on that day (the development machine has no
 * internet): check every figure against these pages before relying on a total,
 * and update `asOf` when you do.
 *   - AWS Lambda pricing            https://aws.amazon.com/lambda/pricing/
 *   - Amazon API Gateway pricing    https://aws.amazon.com/api-gateway/pricing/ (HTTP APIs)
 *   - Amazon S3 pricing             https://aws.amazon.com/s3/pricing/ (Requests & data retrievals, S3 Standard)
 *   - Amazon CloudWatch pricing     https://aws.amazon.com/cloudwatch/pricing/ (Logs, Standard ingestion)
 */

export type LambdaArch = 'arm64' | 'x86_64';

export interface PriceTable {
  asOf: string;
  region: string;
  checked: string;
  sources: string[];
  lambda: Record<LambdaArch, { perGbSecond: number; perMillionRequests: number }>;
  /** HTTP API (not REST API): per million requests; each started 512 KB of a request counts as one more. */
  apiGatewayHttp: { perMillionRequests: number; meteringIncrementBytes: number };
  /** S3 Standard GET (and HEAD, SELECT) requests. */
  s3: { perThousandGets: number };
  /**
   * CloudWatch Logs ingestion, Standard log class (Lambda's logs are billed as
   * vended logs, whose first tier is the same). Each event is counted with 26
   * bytes of overhead, as PutLogEvents counts it; assumed billed alike.
   */
  cloudWatchLogs: { perGbIngested: number; eventOverheadBytes: number };
}

/** 1 GB = 2^30 bytes and 1 GB of Lambda memory = 1,024 MB, as AWS bills them. */
export const GB = 2 ** 30;

export const PRICES: PriceTable = {
  asOf: '2026-12-03',
  region: 'us-east-1',
  checked: 'not checked against the pages: written from known list prices; verify before use',
  sources: [
    'https://aws.amazon.com/lambda/pricing/',
    'https://aws.amazon.com/api-gateway/pricing/',
    'https://aws.amazon.com/s3/pricing/',
    'https://aws.amazon.com/cloudwatch/pricing/',
  ],
  lambda: {
    arm64: { perGbSecond: 0.0000133334, perMillionRequests: 0.2 },
    x86_64: { perGbSecond: 0.0000166667, perMillionRequests: 0.2 },
  },
  apiGatewayHttp: { perMillionRequests: 1.0, meteringIncrementBytes: 512 * 1024 },
  s3: { perThousandGets: 0.0004 },
  cloudWatchLogs: { perGbIngested: 0.5, eventOverheadBytes: 26 },
};
