/** Files that hold a secret (the operator token, the embedded S3's key pair) are for their owner's eyes only. */
import { chmod, writeFile } from 'node:fs/promises';

/** Writes `content` readable by its owner only, also when the file already exists with another mode. */
export async function writeOwnerOnly(file: string, content: string, flag: 'w' | 'wx' = 'w'): Promise<void> {
  await writeFile(file, content, { mode: 0o600, flag });
  // writeFile's mode applies only when it creates the file.
  await chmod(file, 0o600);
}
