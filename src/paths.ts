// Where the project's own files are, wherever the checkout or the compiled
// output lives: the folder that holds pageref's package.json.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

let root: string | undefined;

export function projectRoot(): string {
  if (root) return root;
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'pageref') {
      root = dir;
      return dir;
    }
    if (dirname(dir) === dir) throw new Error(`pageref: cannot find the project folder above ${__dirname}`);
  }
}

export function projectPath(...parts: string[]): string {
  return join(projectRoot(), ...parts);
}
