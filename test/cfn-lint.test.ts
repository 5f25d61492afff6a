/**
 * The synthesized templates pass cfn-lint (AWS's CloudFormation linter), for
 * the dev settings and the prod ones with the weekly schedule: no errors, and
 * only the warnings named below, each with the reason it stays.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../infra/app.ts';
import { repoRoot, tempDir } from './support/env.ts';

const run = promisify(execFile);

/**
 * W3005: CDK adds an explicit DependsOn from each function to its role (and
 * the role's policy) so the policy exists before the function is invoked;
 * cfn-lint sees the role's GetAtt already orders it. Harmless, and not ours
 * to remove.
 */
const EXPLAINED_WARNINGS = new Set(['W3005']);

interface Finding {
  Level: 'Error' | 'Warning' | 'Informational';
  Rule: { Id: string };
  Message: string;
  Filename: string;
}

const cdkJson = JSON.parse(readFileSync(path.join(repoRoot, 'cdk.json'), 'utf8')) as {
  context: Record<string, unknown>;
};

async function writeTemplate(dir: string, name: string, context: Record<string, unknown>): Promise<string> {
  const { stack } = buildApp({ context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [], ...context } });
  const file = path.join(dir, `${name}.template.json`);
  await writeFile(file, JSON.stringify(Template.fromStack(stack).toJSON()));
  return file;
}

/** One cfn-lint process for every file: its start-up is most of its time. */
async function cfnLint(files: string[]): Promise<Finding[]> {
  try {
    const { stdout } = await run('cfn-lint', ['--format', 'json', ...files], { maxBuffer: 16 * 1024 * 1024 });
    return JSON.parse(stdout || '[]') as Finding[];
  } catch (error) {
    const failed = error as NodeJS.ErrnoException & { stdout?: string };
    // cfn-lint's exit code is a bit mask of what it found; the findings are on stdout either way.
    if (typeof failed.stdout === 'string' && failed.stdout.trim().startsWith('['))
      return JSON.parse(failed.stdout) as Finding[];
    throw error;
  }
}

async function cfnLintInstalled(): Promise<boolean> {
  try {
    await run('cfn-lint', ['--version']);
    return true;
  } catch {
    return false;
  }
}

test('cfn-lint: the dev and prod templates have no errors, only explained warnings', async (t) => {
  if (!(await cfnLintInstalled())) {
    // CI must lint; a developer machine without cfn-lint skips, saying so.
    if (process.env.CI) assert.fail('cfn-lint is not installed on this CI machine');
    t.skip('cfn-lint is not installed');
    return;
  }
  const dir = await tempDir('digitnet-cfn-');
  const files = [
    await writeTemplate(dir, 'dev', {}),
    await writeTemplate(dir, 'prod', { stage: 'prod', weeklyRetrain: true }),
  ];
  const findings = await cfnLint(files);
  const unexplained = findings.filter((f) => f.Level === 'Error' || !EXPLAINED_WARNINGS.has(f.Rule.Id));
  assert.deepEqual(
    unexplained.map((f) => `${path.basename(f.Filename)} ${f.Level} ${f.Rule.Id}: ${f.Message}`),
    [],
  );
});
