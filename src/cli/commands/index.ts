/** The list of subcommands. Add a line per command module. */
import type { Command } from 'commander';
import { registerBench } from './bench';
import { registerDebug } from './debug';
import { registerExport } from './export';
import { registerFsck } from './fsck';
import { registerGet } from './get';
import { registerImport } from './import';
import { registerInfo } from './info';
import { registerMkfs } from './mkfs';
import { registerMount } from './mount';
import { registerPut } from './put';
import { registerStats } from './stats';
import { registerUmount } from './umount';

export function registerCommands(program: Command): void {
  registerMkfs(program);
  registerInfo(program);
  registerFsck(program);
  registerPut(program);
  registerGet(program);
  registerImport(program);
  registerExport(program);
  registerMount(program);
  registerUmount(program);
  registerStats(program);
  registerDebug(program);
  registerBench(program);
}
