/**
 * The Python the side-by-side benches run (`train --vs-pytorch`, `peer`):
 * $PYTHON when set, else the PATH's python3, else the system one Debian's
 * apt packages install into (a pyenv or venv python3 on the PATH often lacks
 * them).
 */
import { spawnSync } from 'node:child_process';
import { CliError } from '../cli/run.ts';

/** The first candidate that imports every module, or a CliError naming what to install. */
export function pythonWith(modules: readonly string[], purpose: string, install: string): string {
  const candidates = process.env.PYTHON ? [process.env.PYTHON] : ['python3', '/usr/bin/python3'];
  const found = candidates.find(
    (python) => spawnSync(python, ['-c', `import ${modules.join(', ')}`], { stdio: 'ignore' }).status === 0,
  );
  if (found) return found;
  throw new CliError(
    `${purpose} needs Python 3 with ${modules.join(', ')} (tried ${candidates.join(', ')}). Install them ` +
      `(${install}), or set PYTHON to an interpreter that has them.`,
  );
}
