/**
 * `npm run audit:runtime` (run by CI): `npm audit` over two sets of packages,
 * each judged on its own.
 *
 * - runtime: what runs in the Lambda functions and the training image
 *   (`npm audit --omit=dev`). A high or critical advisory fails the check.
 * - local stack: what `npm start` runs besides those: tsx, which runs it, and
 *   s3rver, the embedded S3, with everything they depend on (read from
 *   package-lock.json). A high or critical advisory fails the check unless it
 *   is on LOCAL_STACK_ALLOWED below, for a package only the local stack uses.
 *
 * When the registry's audit endpoint cannot answer (seen here: 405 from a
 * registry proxy), npm prints an error instead of advisories. That is said
 * plainly, set by set — NOTHING was audited — and does not fail the build,
 * since nothing was found; but nothing was checked either.
 * Extra arguments go to npm (`-- --registry URL`).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { runCli } from './cli/run.ts';

const SERIOUS = new Set(['high', 'critical']);
const ROOT = path.resolve(import.meta.dirname, '..');

/** The dev dependencies `npm start` runs (`tsx scripts/local.ts`, whose embedded S3 is s3rver). */
const LOCAL_STACK_ROOTS = ['tsx', 's3rver'];

/**
 * High advisories in s3rver's tree that have no fixed release, each with why it
 * cannot hurt here. An entry applies only to the package it names, and only
 * while no runtime dependency uses that package.
 */
const LOCAL_STACK_ALLOWED: { advisory: string; name: string; why: string }[] = [
  {
    advisory: 'GHSA-wm7h-9275-46v2',
    name: 'dicer',
    why:
      's3rver parses multipart form POSTs (browser uploads) with busboy and dicer; ' +
      'the local S3 refuses those requests before s3rver sees them',
  },
  {
    advisory: 'GHSA-6w63-h3fj-q4vw',
    name: 'fast-xml-parser',
    why:
      's3rver parses request XML with it; the local S3 listens on 127.0.0.1 only ' +
      'and its one client is the AWS SDK, whose XML has no DOCTYPE',
  },
];

interface Advisory {
  name: string;
  severity: string;
  range: string;
  title: string;
  url: string;
}

interface AuditReport {
  vulnerabilities?: Record<string, { name: string; via: unknown[] }>;
  error?: unknown;
  message?: string;
}

interface AuditSet {
  label: string;
  npmArgs: string[];
  /** Package names in the set; undefined for all that npm audited. */
  members?: Set<string>;
  allowed: typeof LOCAL_STACK_ALLOWED;
}

interface AuditVerdict {
  outcome: 'clean' | 'findings' | 'unavailable';
  lines: string[];
}

interface LockPackage {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

/** The names of `roots` and every package they depend on, resolved the way Node does through package-lock.json. */
function dependencyClosure(packages: Record<string, LockPackage>, roots: string[]): Set<string> {
  const resolve = (from: string, name: string): string | undefined => {
    for (let base = from; ; base = base.slice(0, Math.max(0, base.lastIndexOf('/node_modules/')))) {
      const key = `${base ? `${base}/` : ''}node_modules/${name}`;
      if (packages[key]) return key;
      if (!base) return undefined;
    }
  };
  const names = new Set<string>();
  const seen = new Set<string>();
  const visit = (key: string | undefined) => {
    if (key === undefined || seen.has(key)) return;
    seen.add(key);
    names.add(key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length));
    const pkg = packages[key]!;
    for (const name of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) visit(resolve(key, name));
  };
  for (const root of roots) visit(resolve('', root));
  return names;
}

const idOf = (url: string) => url.slice(url.lastIndexOf('/') + 1);

/** Judges the output of `npm audit --json` for one set. */
function judgeAudit(text: string, set: AuditSet): AuditVerdict {
  let report: AuditReport | undefined;
  try {
    report = JSON.parse(text) as AuditReport;
  } catch {
    report = undefined;
  }
  if (typeof report?.vulnerabilities !== 'object' || report.error !== undefined) {
    const why = report?.message || text.trim().split('\n')[0] || 'no output';
    const notice = `NOTICE: npm audit could not get advisories (${why}); NOTHING was audited in ${set.label}.`;
    return { outcome: 'unavailable', lines: [notice] };
  }
  // An advisory object sits in the `via` of the package it affects; the packages that depend on it repeat its name only.
  const advisories = new Map<string, Advisory>();
  for (const entry of Object.values(report.vulnerabilities)) {
    for (const via of entry.via) {
      if (typeof via !== 'object' || via === null) continue;
      const advisory = via as Advisory;
      if (!set.members || set.members.has(advisory.name)) advisories.set(`${advisory.name} ${advisory.url}`, advisory);
    }
  }
  const serious = [...advisories.values()].filter((a) => SERIOUS.has(a.severity));
  const allowance = (a: Advisory) =>
    set.allowed.find((allow) => allow.name === a.name && allow.advisory === idOf(a.url));
  const describe = (a: Advisory) => `${a.severity}: ${a.name} ${a.range} ${a.title} ${a.url}`;
  const failing = serious.filter((a) => !allowance(a));
  if (failing.length > 0)
    return { outcome: 'findings', lines: failing.map((a) => `npm audit (${set.label}): ${describe(a)}`) };
  const lines = serious.map((a) => `npm audit (${set.label}): allowed ${describe(a)}: ${allowance(a)!.why}`);
  const lower = advisories.size - serious.length;
  const beyond = serious.length ? ' beyond the allowed ones' : '';
  lines.push(`npm audit: no high or critical advisories in ${set.label}${beyond} (${lower} of lower severity)`);
  return { outcome: 'clean', lines };
}

async function npmAudit(args: string[]): Promise<string> {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  // npm audit exits non-zero both for findings and for errors; the JSON on stdout says which.
  return promisify(execFile)(npm, ['audit', '--json', ...args], { cwd: ROOT, maxBuffer: 64 << 20 }).then(
    (result) => result.stdout,
    (error: { stdout?: string }) => error.stdout ?? '',
  );
}

async function main(): Promise<number> {
  const lockFile = await readFile(path.join(ROOT, 'package-lock.json'), 'utf8');
  const { packages } = JSON.parse(lockFile) as { packages: Record<string, LockPackage> };
  const runtime = dependencyClosure(
    packages,
    Object.keys({ ...packages['']!.dependencies, ...packages['']!.optionalDependencies }),
  );
  const localStack = dependencyClosure(packages, LOCAL_STACK_ROOTS);
  const sets: AuditSet[] = [
    { label: 'runtime dependencies', npmArgs: ['--omit=dev'], allowed: [] },
    {
      label: `the local stack (npm start: ${LOCAL_STACK_ROOTS.join(', ')} and their dependencies)`,
      npmArgs: [],
      members: localStack,
      allowed: LOCAL_STACK_ALLOWED.filter((allow) => !runtime.has(allow.name)),
    },
  ];
  let failed = false;
  for (const set of sets) {
    const verdict = judgeAudit(await npmAudit([...set.npmArgs, ...process.argv.slice(2)]), set);
    failed ||= verdict.outcome === 'findings';
    (verdict.outcome === 'findings' ? process.stderr : process.stdout).write(`${verdict.lines.join('\n')}\n`);
  }
  return failed ? 1 : 0;
}

runCli(main);
