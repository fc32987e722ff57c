/** Entry of the detached daemon process: `node entry.js '<DaemonArgs JSON>'`. */
import { runDaemon, type DaemonArgs, type DaemonMessage } from './main';

const args = JSON.parse(process.argv[2] ?? '{}') as DaemonArgs;
const notify = (msg: DaemonMessage): void => {
  if (process.send) process.send(msg);
};

runDaemon(args, notify).then(
  () => {
    // Worker threads and sockets are closed by then; exit explicitly so a stray timer cannot keep a dead mount's daemon alive.
    process.exit();
  },
  (err: unknown) => {
    process.stderr.write(
      `imapfs daemon: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
