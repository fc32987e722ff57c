/** The list of subcommands. Add a line per command module. */
import type { Command } from 'commander';

export function registerCommands(_program: Command): void {
  // Command modules register themselves here, e.g. registerMkfs(program).
}
