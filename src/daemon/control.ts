/**
 * The daemon's control socket: newline-delimited JSON over a unix socket beside the mount.
 * `imapfs stats`, `imapfs umount` and `imapfs debug fault` are its clients. One request per line,
 * one reply per line; a reply is `{ok:true, result}` or `{ok:false, error:{code,message,hint}}`.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { ImapError, type ErrorCode, ERROR_TABLE } from '../protocol/errors';

export interface ControlRequest {
  cmd: string;
  args?: Record<string, unknown>;
}

type ControlReply =
  { ok: true; result: unknown } | { ok: false; error: { code: ErrorCode; message: string; hint: string } };

export type ControlHandler = (req: ControlRequest) => Promise<unknown>;

export class ControlServer {
  private readonly server: net.Server;

  private constructor(server: net.Server) {
    this.server = server;
  }

  static async listen(socketPath: string, handle: ControlHandler): Promise<ControlServer> {
    // A socket file left by a killed daemon would make listen() fail with EADDRINUSE.
    try {
      fs.unlinkSync(socketPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const server = net.createServer((conn) => serveConnection(conn, handle));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(socketPath, 0o600);
    return new ControlServer(server);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function serveConnection(conn: net.Socket, handle: ControlHandler): void {
  let buffered = '';
  conn.setEncoding('utf8');
  conn.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      void answer(line, handle).then((reply) => {
        if (!conn.destroyed) conn.write(`${JSON.stringify(reply, bigintReplacer)}\n`);
      });
    }
  });
  conn.on('error', () => conn.destroy()); // a client that went away mid-reply is not the daemon's problem
}

async function answer(line: string, handle: ControlHandler): Promise<ControlReply> {
  try {
    const req = JSON.parse(line) as ControlRequest;
    if (typeof req.cmd !== 'string') throw new ImapError('IMAP_E_INVALID', 'control request without cmd');
    return { ok: true, result: await handle(req) };
  } catch (err) {
    const e =
      err instanceof ImapError
        ? err
        : new ImapError('IMAP_E_INTERNAL', err instanceof Error ? err.message : String(err));
    return { ok: false, error: { code: e.code, message: e.message, hint: e.hint } };
  }
}

function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** One request to a running daemon. Throws IMAP_E_NOT_MOUNTED when nothing listens there. */
export async function controlRequest(
  socketPath: string,
  req: ControlRequest,
  timeoutMs = 30_000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socketPath);
    let buffered = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new ImapError('IMAP_E_TIMEOUT', `daemon did not answer '${req.cmd}' within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${JSON.stringify(req)}\n`));
    conn.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      conn.end();
      const reply = JSON.parse(buffered.slice(0, nl)) as ControlReply;
      if (reply.ok) resolve(reply.result);
      else {
        const code = reply.error.code in ERROR_TABLE ? reply.error.code : 'IMAP_E_INTERNAL';
        const e = new ImapError(code);
        e.message = reply.error.message;
        reject(e);
      }
    });
    conn.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        reject(new ImapError('IMAP_E_NOT_MOUNTED', `no imapfs daemon answers at ${socketPath}`));
      } else reject(err);
    });
  });
}
