/**
 * `imapfs debug fault MOUNTPOINT ACTOR crash|crash-after|hang|delay|error [--ms N] [--errno E] [--count K]
 *  [--probability P] [--op OP]` and `imapfs debug fault MOUNTPOINT [ACTOR] --clear`: drives the fault
 * hooks of a live daemon's actors, so recovery is tested on the real thing.
 */
import type { Command } from 'commander';
import { describeFault, parseFaultCommand } from '../../actors/runtime/faults';
import { controlRequest } from '../../daemon/control';
import { controlSocketPath } from '../../daemon/paths';

export function registerDebug(program: Command): void {
  const debug = program.command('debug').description('diagnostics and fault injection on a live mount');
  debug
    .command('fault')
    .description('inject a fault into an actor: crash, crash-after, hang, delay or error (or --clear)')
    .argument('<mountpoint>')
    .argument(
      '[words...]',
      'ACTOR MODE [--ms N] [--errno E] [--count K] [--probability P] [--op OP], or --clear',
    )
    .allowUnknownOption(true)
    .helpOption(false)
    .action(async (mountpoint: string, words: string[], _opts: unknown, cmd: Command) => {
      // commander treats --ms etc. as unknown options; they are the fault's own words.
      const all = [...words, ...cmd.args.slice(1 + words.length)];
      const fault = parseFaultCommand(all);
      const socket = controlSocketPath(mountpoint);
      if (fault.kind === 'clear') {
        await controlRequest(socket, { cmd: 'clear-faults', args: { actor: fault.actor } });
        process.stdout.write(`cleared faults${fault.actor ? ` of ${fault.actor}` : ''}\n`);
      } else {
        await controlRequest(socket, { cmd: 'fault', args: { actor: fault.actor, spec: fault.spec } });
        process.stdout.write(`armed ${fault.actor}: ${describeFault(fault.spec)}\n`);
      }
    });
}
