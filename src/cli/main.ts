/**
 * The `imapfs` command. Each subcommand lives in src/cli/commands/<name>.ts and exports
 * `register(program)`; this file only wires them and turns errors into one clear line (or JSON).
 */
import { Command } from 'commander';
import { reportErrorAndExit } from './report';
import { registerCommands } from './commands';

async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program
    .name('imapfs')
    .description('A POSIX filesystem inside one PNG image (the infinite map)')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  registerCommands(program);
  await program.parseAsync(argv);
}

main(process.argv).catch((err: unknown) => reportErrorAndExit(err, process.argv.includes('--json')));
