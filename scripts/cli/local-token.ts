/**
 * The operator token of the local stack: `npm start` writes it to this file in
 * its data folder, and the operator CLIs send it as a bearer token.
 */
import { readFile } from 'node:fs/promises';
import { CliError } from './run.ts';

export const TOKEN_FILE = 'local-token';

export async function readLocalToken(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    throw new CliError(`no operator token at ${file}: is \`npm start\` running from this folder?`);
  }
}
