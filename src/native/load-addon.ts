// Loads the native addon built by `npm run build` (node-gyp).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as Addon from './addon';

export type AddonModule = typeof Addon;

/** The checkout: the nearest folder above this file with a package.json (from src/ or dist/src/). */
function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(__dirname, '..', '..');
  }
}

/** Where the .node file may be, in the order tried. */
export function addonCandidates(root = packageRoot()): string[] {
  return ['Release', 'Debug'].map((flavour) => path.join(root, 'build', flavour, 'pageref.node'));
}

/**
 * Returns the addon's exports. Throws an Error naming every path tried when
 * none exists; a file that exists but fails to load rethrows that error.
 */
export function loadAddon(): AddonModule {
  const tried = addonCandidates();
  for (const candidate of tried) {
    try {
      return require(candidate) as AddonModule;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    }
  }
  throw new Error(
    `pageref: the native addon is not built. Tried:\n  ${tried.join('\n  ')}\nRun \`npm run build\`.`,
  );
}
