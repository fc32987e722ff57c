/**
 * `imapfs mount MAP MOUNTPOINT`: validates everything it can before forking (config, mountpoint),
 * then starts the daemon detached and returns once the daemon says the mount is ready, or with the
 * daemon's own error. `--foreground` runs the daemon in this process instead.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../config';
import { findMount, defaultLogPath } from '../../daemon/paths';
import { runDaemon, type DaemonArgs, type DaemonMessage } from '../../daemon/main';
import { ImapError } from '../../protocol/errors';
import { parseFaultCommand } from '../../actors/runtime/faults';
import { ACTOR_NAMES, type StartFault } from '../../daemon/mount-session';

interface MountOptions {
  config?: string;
  foreground?: boolean;
  o: string[];
  fault: string[];
  json?: boolean;
}

/**
 * `--fault 'ACTOR MODE [--count K] [--op OP] ...'`: the words of `imapfs debug fault` after the
 * mountpoint, for a fault armed in the actor's first worker, before its first message. That is how
 * a fault reaches the journal's recovery, which runs before the mount exists for `debug fault`.
 */
export function parseStartFaults(texts: readonly string[]): StartFault[] {
  const faults = texts.map((text) => {
    const command = parseFaultCommand(text.trim().split(/\s+/));
    if (command.kind !== 'set') {
      throw new ImapError('IMAP_E_USAGE', `--fault ${JSON.stringify(text)}: --clear has no meaning at mount`);
    }
    if (!(ACTOR_NAMES as readonly string[]).includes(command.actor)) {
      throw new ImapError(
        'IMAP_E_USAGE',
        `--fault ${JSON.stringify(text)}: no actor '${command.actor}' (actors: ${ACTOR_NAMES.join(', ')})`,
      );
    }
    return { actor: command.actor, spec: command.spec };
  });
  // An actor has one spawn fault (ActorSpec.fault): a second would be silently ignored.
  const actors = faults.map((f) => f.actor);
  const twice = actors.find((actor, i) => actors.indexOf(actor) !== i);
  if (twice) throw new ImapError('IMAP_E_USAGE', `--fault: one fault per actor; '${twice}' has two`);
  return faults;
}

function collect(value: string, previous: string[]): string[] {
  return previous.concat([value]);
}

export function checkMountpoint(mountpoint: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(mountpoint);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTCONN') {
      throw new ImapError(
        'IMAP_E_BUSY',
        `${mountpoint} is a dead FUSE mount; run \`imapfs umount ${mountpoint}\``,
      );
    }
    throw new ImapError('IMAP_E_NOT_FOUND', `mountpoint ${mountpoint} does not exist`);
  }
  if (!st.isDirectory()) throw new ImapError('IMAP_E_NOT_DIR', `mountpoint ${mountpoint} is not a directory`);
  const existing = findMount(mountpoint);
  if (existing) {
    throw new ImapError(
      'IMAP_E_BUSY',
      `${mountpoint} is already mounted (${existing.type} from ${existing.source})`,
    );
  }
}

/** The daemon is this same CLI's `daemon` entry, so its command line names the map and mountpoint. */
function daemonEntry(): string {
  const compiled = path.join(__dirname, '..', '..', 'daemon', 'entry.js');
  if (fs.existsSync(compiled)) return compiled;
  return path.join(__dirname, '..', '..', 'daemon', 'entry.ts');
}

/**
 * V8 flags of the daemon process (they hold for its worker threads too). A young generation of at
 * most 2 MiB per semi-space: V8's default lets each of the six isolates (main + actors) grow its
 * nursery to 16 MiB per semi-space under allocation pressure, which a streaming copy is; on the
 * 256 MiB streaming test that cost 10–25 MiB of peak RSS and most of its run-to-run spread
 * (98–123 MiB of growth over idle with the default, 90–96 MiB with this; the bound is 112).
 */
export const DAEMON_V8_FLAGS = ['--max-semi-space-size=2'];

async function startDetached(args: DaemonArgs, logPath: string): Promise<DaemonMessage> {
  const entry = daemonEntry();
  const execArgv = [...DAEMON_V8_FLAGS, ...(entry.endsWith('.ts') ? ['--require', 'tsx/cjs'] : [])];
  const log = fs.openSync(logPath, 'a');
  const child = spawn(process.execPath, [...execArgv, entry, JSON.stringify(args)], {
    detached: true,
    stdio: ['ignore', log, log, 'ipc'],
  });
  fs.closeSync(log);
  return new Promise<DaemonMessage>((resolve, reject) => {
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      reject(
        new ImapError(
          'IMAP_E_IO',
          `the daemon exited before the mount was ready (${signal ?? `status ${code}`}); see ${logPath}`,
        ),
      );
    child.once('exit', onExit);
    child.once('message', (msg: DaemonMessage) => {
      child.off('exit', onExit);
      child.disconnect();
      child.unref();
      resolve(msg);
    });
  });
}

export function registerMount(program: Command): void {
  program
    .command('mount')
    .description('mount a map (the daemon runs in the background unless --foreground)')
    .argument('<map>', 'the map PNG')
    .argument('<mountpoint>', 'an empty directory')
    .option('-c, --config <file>', 'YAML config file')
    .option('-f, --foreground', 'run in the foreground (logs to stderr)')
    .option('-o <options>', 'mount options: ro, allow_other, nogrow, key=value …', collect, [])
    .option(
      '--fault <words>',
      "testing: arm a fault in an actor from its start, in `imapfs debug fault` words, e.g. 'journal crash --count 1 --op recover' (repeatable)",
      collect,
      [],
    )
    .option('--json', 'print the result as JSON')
    .action(async (map: string, mountpoint: string, opts: MountOptions) => {
      const config = loadConfig({ file: opts.config, options: opts.o });
      const faults = parseStartFaults(opts.fault);
      if (!fs.existsSync(map)) throw new ImapError('IMAP_E_MAP_MISSING', map);
      checkMountpoint(mountpoint);
      const logPath = config.log.file || defaultLogPath(map);
      const args: DaemonArgs = {
        map: path.resolve(map),
        mountpoint: path.resolve(mountpoint),
        configFile: opts.config ? path.resolve(opts.config) : undefined,
        options: opts.o,
        logPath: opts.foreground ? undefined : logPath,
        ...(faults.length > 0 ? { faults } : {}),
      };
      if (opts.foreground) {
        await runDaemon(args, (msg) => {
          if (msg.type === 'ready') process.stderr.write(`imapfs: mounted ${map} on ${mountpoint}\n`);
        });
        return;
      }
      const msg = await startDetached(args, logPath);
      if (msg.type === 'error') {
        const e = new ImapError(msg.error.code, msg.error.detail);
        throw e;
      }
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify({ ok: true, map: args.map, mountpoint: args.mountpoint, pid: msg.pid, log: logPath })}\n`,
        );
      } else {
        process.stdout.write(`mounted ${map} on ${mountpoint} (daemon pid ${msg.pid}, log ${logPath})\n`);
      }
    });
}
