/**
 * `npm run audit:runtime` (run by CI): fails when a runtime dependency has a
 * high or critical advisory, per `npm audit --omit=dev`. When the registry's
 * audit endpoint cannot answer (seen here: 405 from a registry proxy), npm
 * prints an error instead of advisories; that is said plainly and does not
 * fail the build, because nothing was found — but nothing was checked either.
 * Extra arguments go to npm (`-- --registry URL`).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { runCli } from './cli/run.ts';

const SERIOUS = new Set(['high', 'critical']);

interface AuditVerdict {
  outcome: 'clean' | 'findings' | 'unavailable';
  lines: string[];
}

interface AuditReport {
  vulnerabilities?: Record<string, { name: string; severity: string; range: string; via: unknown[] }>;
  metadata?: { vulnerabilities?: { total?: number } };
  error?: unknown;
  message?: string;
}

/** Judges the output of `npm audit --json`. */
function judgeAudit(text: string): AuditVerdict {
  let report: AuditReport | undefined;
  try {
    report = JSON.parse(text) as AuditReport;
  } catch {
    report = undefined;
  }
  if (typeof report?.vulnerabilities !== 'object' || report.error !== undefined) {
    const why = report?.message || text.trim().split('\n')[0] || 'no output';
    return { outcome: 'unavailable', lines: [`NOTICE: npm audit could not get advisories (${why}); runtime dependencies were NOT checked.`] };
  }
  const serious = Object.values(report.vulnerabilities).filter((v) => SERIOUS.has(v.severity));
  if (serious.length > 0) {
    return {
      outcome: 'findings',
      lines: serious.map((v) => {
        const advisories = v.via.filter((via): via is { title: string; url: string } => typeof via === 'object' && via !== null);
        return `npm audit: ${v.severity}: ${v.name} ${v.range} ${advisories.map((a) => `${a.title} ${a.url}`).join('; ')}`.trimEnd();
      }),
    };
  }
  const lower = report.metadata?.vulnerabilities?.total ?? 0;
  return { outcome: 'clean', lines: [`npm audit: no high or critical advisories in runtime dependencies (${lower} of lower severity)`] };
}

async function main(): Promise<number> {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  // npm audit exits non-zero both for findings and for errors; the JSON on stdout says which.
  const stdout = await promisify(execFile)(npm, ['audit', '--omit=dev', '--json', ...process.argv.slice(2)], { maxBuffer: 64 << 20 }).then(
    (result) => result.stdout,
    (error: { stdout?: string }) => error.stdout ?? '',
  );
  const verdict = judgeAudit(stdout);
  (verdict.outcome === 'findings' ? process.stderr : process.stdout).write(verdict.lines.join('\n') + '\n');
  return verdict.outcome === 'findings' ? 1 : 0;
}

runCli(main);
