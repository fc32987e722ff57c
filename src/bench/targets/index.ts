/**
 * The target registry. Adding a target is one class (see target.ts) and one line here.
 */
import type { Target, TargetOptions } from './target';
import { NativeTarget, ShmTarget } from './native';
import { Fuse2fsTarget } from './fuse2fs';
import { MemfsTarget } from './memfs';
import { ImapfsTarget } from './imapfs';

export { Target, TargetUnavailable, type TargetOptions, type CacheStats } from './target';

export const TARGETS: Record<string, (opts: TargetOptions) => Target> = {
  imapfs: (o) => new ImapfsTarget(o),
  native: (o) => new NativeTarget(o),
  fuse2fs: (o) => new Fuse2fsTarget(o),
  null: (o) => new MemfsTarget(o),
  shm: (o) => new ShmTarget(o),
};

export function makeTarget(name: string, opts: TargetOptions): Target {
  const make = TARGETS[name];
  if (!make) throw new Error(`unknown bench target "${name}" (known: ${Object.keys(TARGETS).join(', ')})`);
  return make(opts);
}
