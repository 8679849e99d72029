/**
 * Sockets in another network namespace: ployzd runs on the host, the overlay address lives on wg0
 * in ployz-networking's netns. A short-lived child (`nsenter --net=<netns> node -e …`) listens or
 * connects there and hands the socket to this process over its IPC channel (Node passes the file
 * descriptor); the child then exits and the socket stays in the netns it was made in. The
 * transfer listener is bound that way to the wg0 address alone, never to a host address.
 * `netns` null: this process's own namespace (tests on 127.0.0.1).
 */
import { spawn } from 'node:child_process';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { PloyzError } from '@ployz/types';

export interface HostPort {
  host: string;
  port: number;
}

const LISTEN = `
const net = require('node:net');
const [host, port] = JSON.parse(process.argv[1]);
const server = net.createServer();
server.once('error', (e) => process.send({ error: e.code + ' ' + e.message }, () => process.exit(1)));
server.listen({ host, port, exclusive: true }, () => process.send({ ok: true }, server, () => process.exit(0)));
`;

const CONNECT = `
const net = require('node:net');
const [host, port, localAddress, timeoutMs] = JSON.parse(process.argv[1]);
const socket = net.connect({ host, port, ...(localAddress ? { localAddress } : {}), pauseOnConnect: true });
const timer = setTimeout(() => process.send({ error: 'ETIMEDOUT connect' }, () => process.exit(1)), timeoutMs);
socket.once('error', (e) => process.send({ error: e.code + ' ' + e.message }, () => process.exit(1)));
socket.once('connect', () => { clearTimeout(timer); socket.pause(); process.send({ ok: true }, socket, () => process.exit(0)); });
`;

function failed(what: string, detail: string, netns: string): PloyzError {
  return new PloyzError(
    'VOLUME_TRANSFER_FAILED',
    `${what} in the overlay network namespace failed: ${detail}`,
    { details: { netns, reason: detail.split(' ')[0] ?? detail } },
  );
}

function inNetns<T extends Server | Socket>(netns: string, script: string, args: unknown[], what: string) {
  return new Promise<T>((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${netns}`, process.execPath, '-e', script, JSON.stringify(args)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    let settled = false;
    child.stderr?.setEncoding('utf8').on('data', (t: string) => {
      stderr = (stderr + t).slice(-2000);
    });
    child.once('error', (e) => {
      if (settled) return;
      settled = true;
      reject(failed(what, `nsenter: ${e.message}`, netns));
    });
    child.on('message', (message: { ok?: true; error?: string }, handle: unknown) => {
      if (settled) return;
      settled = true;
      if (message.ok === true && handle !== undefined) resolve(handle as T);
      else reject(failed(what, message.error ?? 'no socket handed over', netns));
    });
    child.once('exit', (code) => {
      if (settled) return;
      settled = true;
      reject(failed(what, `helper exited ${code}: ${stderr.trim()}`, netns));
    });
  });
}

/**
 * A listening server on `address` (in `netns` when given). Connections keep their half-open end
 * (the receiver answers after the sender has finished writing).
 */
export async function listenIn(netns: string | null, address: HostPort): Promise<Server> {
  if (netns === null) {
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: address.host, port: address.port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }
  const server = await inNetns<Server>(netns, LISTEN, [address.host, address.port], 'listening');
  // A handed-over server is made without options; net.Server reads this field for each connection.
  (server as Server & { allowHalfOpen: boolean }).allowHalfOpen = true;
  return server;
}

/** A connected socket to `to` from `localAddress` (in `netns` when given), half-open allowed. */
export async function connectIn(
  netns: string | null,
  to: HostPort,
  localAddress: string | undefined,
  timeoutMs = 10_000,
): Promise<Socket> {
  if (netns === null) {
    return new Promise<Socket>((resolve, reject) => {
      const socket = netConnect({
        host: to.host,
        port: to.port,
        allowHalfOpen: true,
        ...(localAddress === undefined ? {} : { localAddress }),
      });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(failed('connecting', 'ETIMEDOUT connect', 'self'));
      }, timeoutMs);
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.on('error', () => undefined); // the caller's listeners take over
        resolve(socket);
      });
    });
  }
  const socket = await inNetns<Socket>(
    netns,
    CONNECT,
    [to.host, to.port, localAddress ?? null, timeoutMs],
    `connecting to [${to.host}]:${to.port}`,
  );
  socket.allowHalfOpen = true;
  socket.resume();
  return socket;
}
