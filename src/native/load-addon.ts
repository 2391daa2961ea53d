// Loads the native addon built by `npm run build` (node-gyp).
import * as path from 'node:path';
import type * as Addon from './addon';

export type AddonModule = typeof Addon;

/** Where the .node file may be, in the order tried: Release first, then Debug. */
export function addonCandidates(root = path.resolve(__dirname, '..', '..', '..')): string[] {
  // __dirname is dist/src/native once compiled, src/native under ts-node.
  const roots = [root, path.resolve(__dirname, '..', '..')];
  const out: string[] = [];
  for (const r of roots)
    for (const flavour of ['Release', 'Debug']) {
      const p = path.join(r, 'build', flavour, 'pageref.node');
      if (!out.includes(p)) out.push(p);
    }
  return out;
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
