/**
 * The deployed stack's outputs, as `npm run deploy` wrote them to
 * cdk.outputs.json in the folder it ran from: the one place the command-line
 * tools read them.
 */
import { readFile } from 'node:fs/promises';
import { CliError } from './run.ts';

export const OUTPUTS_FILE = 'cdk.outputs.json';

export type StackOutputName = 'ApiUrl' | 'BucketName';

/**
 * `name`'s value in the first stack of `file` that has it. `orElse` (e.g.
 * "pass --url") says what the user can do instead of deploying.
 */
export async function stackOutput(
  name: StackOutputName,
  options: { file?: string; orElse?: string } = {},
): Promise<string> {
  const file = options.file ?? OUTPUTS_FILE;
  const instead = options.orElse ? `, or ${options.orElse}` : '';
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CliError(`--deployed needs ${file}: run \`npm run deploy\` first${instead}`);
    }
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
  }
  let stacks: unknown;
  try {
    stacks = JSON.parse(text);
  } catch (error) {
    throw new CliError(
      `${file} is not valid JSON (${(error as Error).message}): run \`npm run deploy\` again${instead}`,
    );
  }
  const values = typeof stacks === 'object' && stacks !== null ? Object.values(stacks) : [];
  const value = values
    .map((outputs) => (outputs as Record<string, unknown> | null)?.[name])
    .find((v) => typeof v === 'string' && v !== '');
  if (typeof value !== 'string')
    throw new CliError(`${file} has no ${name} output: run \`npm run deploy\` again${instead}`);
  return value;
}
