/** The disk itself: a directory on the filesystem that holds the map. The floor every ratio is read against. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Target } from './target';
import { probe } from '../proc';

export class NativeTarget extends Target {
  readonly name: string = 'native';
  readonly description: string = 'a directory on the disk that holds the map (in-kernel filesystem)';

  async setup(): Promise<void> {
    this.dir = join(this.makeBase(), 'mnt');
    mkdirSync(this.dir);
    const fsType = probe('stat', ['-f', '-c', '%T', this.dir]);
    if (fsType) this.versions[`${this.name} fs`] = fsType;
  }
}

/**
 * A directory in /dev/shm (tmpfs): memory speed with no FUSE hop. Cheap and always present, it is
 * what the tests use as a second target, and it bounds what any page-cache-backed target can reach.
 */
export class ShmTarget extends NativeTarget {
  override readonly name = 'shm';
  override readonly description = 'a directory in /dev/shm (tmpfs, in-kernel, memory only)';

  constructor(opts: ConstructorParameters<typeof NativeTarget>[0]) {
    super({ ...opts, workdir: '/dev/shm' });
  }
}
