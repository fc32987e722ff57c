/**
 * Finding and loading our native addons (built by `npm run install`, i.e. node-gyp from binding.gyp,
 * into build/Release). Both the dist/ build and ts-jest's in-place sources find them by walking up
 * from this file to the package root.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Path of `build/Release/<file>` above this module, or the path in `overrideEnv` if that is set. */
export function findAddon(file: string, overrideEnv: string): string {
  const override = process.env[overrideEnv];
  if (override) return override;
  let dir = __dirname;
  for (;;) {
    const candidate = join(dir, 'build', 'Release', file);
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(
    `${file} not found above ${__dirname}: build it with \`npm run install\` (node-gyp rebuild)`,
  );
}

/** dlopen an addon; each thread that calls this gets its own instance of the module's exports. */
export function loadAddon(path: string): unknown {
  const mod: { exports: unknown } = { exports: {} };
  process.dlopen(mod, path);
  return mod.exports;
}
