/**
 * The daemon process: loads the config, starts the mount session (actors + FUSE front end), serves
 * the control socket, and turns SIGTERM/SIGINT into the same drain → checkpoint → release as
 * `imapfs umount`. The parent `imapfs mount` waits for one message: ready, or the error that
 * prevented the mount.
 */
import pino, { type Logger } from 'pino';
import { loadConfig } from '../config';
import { ImapError, type ErrorCode } from '../protocol/errors';
import { toImapError } from '../cli/report';
import { ControlServer, type ControlRequest } from './control';
import { controlSocketPath } from './paths';
import { MountSession, type StartFault } from './mount-session';

export interface DaemonArgs {
  map: string;
  mountpoint: string;
  configFile?: string;
  options: string[];
  /** Set when detached: stdout/stderr already go to this file. */
  logPath?: string;
  /** `imapfs mount --fault`: faults armed in actors from their start (testing recovery). */
  faults?: StartFault[];
}

export type DaemonMessage =
  { type: 'ready'; pid: number } | { type: 'error'; error: { code: ErrorCode; detail?: string } };

export async function runDaemon(args: DaemonArgs, notify: (msg: DaemonMessage) => void): Promise<void> {
  process.title = `imapfs ${args.map} ${args.mountpoint}`;
  let config;
  try {
    config = loadConfig({ file: args.configFile, options: args.options });
  } catch (err) {
    const e = toImapError(err);
    notify({ type: 'error', error: { code: e.code, detail: e.detail } });
    process.exitCode = e.exitCode;
    return;
  }
  const log = pino({ level: config.log.level, base: { pid: process.pid, mountpoint: args.mountpoint } });

  // Resolved now: once the FUSE mount is up, a stat of the mountpoint from this process would wait
  // on this process's own reply (a self-deadlock).
  const socketPath = controlSocketPath(args.mountpoint);
  let session: MountSession;
  try {
    if (args.faults?.length) log.warn({ faults: args.faults }, 'faults armed from the start (--fault)');
    session = await MountSession.start({
      map: args.map,
      mountpoint: args.mountpoint,
      config,
      log,
      faults: args.faults,
    });
  } catch (err) {
    const e = toImapError(err);
    log.error({ code: e.code, err }, 'mount failed');
    // pino writes asynchronously: whoever reads the log after our answer must find this line in it.
    await flushLog(log);
    notify({ type: 'error', error: { code: e.code, detail: e.detail } });
    process.exitCode = e.exitCode;
    return;
  }

  let shuttingDown: Promise<void> | null = null;
  const shutdown = (reason: string): Promise<void> => {
    shuttingDown ??= session.shutdown(reason);
    return shuttingDown;
  };

  const control = await ControlServer.listen(socketPath, async (req: ControlRequest) => {
    switch (req.cmd) {
      case 'stats':
        return session.stats();
      case 'unmount':
        await shutdown('imapfs umount');
        return { unmounted: true };
      case 'fault':
        return session.setFault(req.args ?? {});
      case 'clear-faults':
        return session.clearFaults();
      case 'checkpoint':
        return session.checkpoint();
      default:
        throw new ImapError('IMAP_E_INVALID', `unknown control command '${req.cmd}'`);
    }
  });

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      log.info({ signal: sig }, 'signal: unmounting');
      void shutdown(sig);
    });
  }
  process.on('SIGHUP', () => {
    try {
      session.reload(loadConfig({ file: args.configFile, options: args.options }));
      log.info('config reloaded');
    } catch (err) {
      log.error({ err }, 'config reload failed; keeping the running config');
    }
  });

  log.info({ map: args.map, socket: socketPath }, 'mounted');
  notify({ type: 'ready', pid: process.pid });

  await session.ended;
  await shutdown('session ended');
  await control.close();
  log.info('daemon exiting');
  log.flush();
}

function flushLog(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    log.flush((err) => {
      // The log's own failure cannot be logged; it must not hide the error being reported.
      if (err) process.stderr.write(`imapfs: flushing the daemon log failed: ${err.message}\n`);
      resolve();
    });
  });
}
