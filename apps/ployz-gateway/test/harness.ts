import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { MemoryRoutingFeed } from '@ployz/routing';
import { fixtures } from '@ployz/testkit';
import type { InstanceRecord, MachineRecord, ReleaseRecord, RevisionRecord, RoutingFeed } from '@ployz/types';
import { pino } from 'pino';
import { GatewayConfig } from '../src/config.ts';
import { type Gateway, startGateway } from '../src/gateway.ts';

export const REV = 'rev-aaaaaaaaaaaaaaaa';
export const REV2 = 'rev-bbbbbbbbbbbbbbbb';

export function machine(id = 'm1'): MachineRecord {
  return fixtures.machine(id, { endpoints: [] });
}

export function revision(
  service: string,
  routes: { hostnames: string[]; path?: string }[],
  id = REV,
): RevisionRecord {
  const spec = fixtures.serviceSpec({
    namespace: 'default',
    name: service,
    routes: routes.map((r) => ({ kind: 'http', hostnames: r.hostnames, path: r.path ?? '/', port: 'http' })),
  });
  return fixtures.revision(id, { namespace: 'default', service, spec });
}

export function instance(id: string, service: string, slot: number, port: number, rev = REV): InstanceRecord {
  return fixtures.instance(id, {
    namespace: 'default',
    service,
    slot,
    revision: rev,
    container_id: null,
    ip: '127.0.0.1',
    ports: { http: port },
  });
}

export function release(service: string, instances: InstanceRecord[], rev = REV): ReleaseRecord {
  return fixtures.release({
    namespace: 'default',
    service,
    revision: rev,
    slots: instances.map((i) => ({ slot: i.slot, machine: i.machine, instance: i.id })),
  });
}

export interface Backend extends AsyncDisposable {
  port: number;
  name: string;
  server: http.Server;
}

/** A backend that answers with JSON naming itself, the path and the headers it saw. */
export async function startBackend(
  name: string,
  handler?: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<Backend> {
  const server = http.createServer(
    handler ??
      ((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          res.setHeader('content-type', 'application/json');
          res.end(
            JSON.stringify({
              name,
              method: req.method,
              url: req.url,
              headers: req.headers,
              body: Buffer.concat(chunks).toString(),
            }),
          );
        });
      }),
  );
  const tunnels = new Set<Duplex>();
  server.on('upgrade', (req, socket) => {
    tunnels.add(socket);
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nupgrade: ${req.headers.upgrade}\r\nconnection: upgrade\r\nx-backend: ${name}\r\n\r\n`,
    );
    socket.on('data', (d: Buffer) => socket.write(`${name}:${d.toString()}`));
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    name,
    server,
    async [Symbol.asyncDispose]() {
      server.closeAllConnections();
      for (const socket of tunnels) socket.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

export function testConfig(overrides: Partial<Record<keyof GatewayConfig, unknown>> = {}): GatewayConfig {
  return GatewayConfig.parse({
    listenHost: '127.0.0.1',
    httpPort: 0,
    httpsPort: 0,
    adminPort: 0,
    logLevel: 'silent',
    drainTimeoutMs: 2000,
    ...overrides,
  });
}

export interface RunningGateway extends AsyncDisposable {
  gateway: Gateway;
  url: string;
  admin: string;
}

export async function runGateway(
  feed: RoutingFeed | undefined,
  config = testConfig(),
): Promise<RunningGateway> {
  const gateway = await startGateway(config, {
    logger: pino({ level: 'silent' }),
    ...(feed ? { feed } : {}),
  });
  return {
    gateway,
    url: `http://127.0.0.1:${gateway.httpPort}`,
    admin: `http://127.0.0.1:${gateway.adminPort}`,
    [Symbol.asyncDispose]: () => gateway.close(),
  };
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A plain node:http request (so Host can be anything), with a fresh connection each time. */
export function request(
  url: string,
  options: {
    host?: string;
    path?: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
  } = {},
): Promise<Answer> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: options.path ?? '/',
        method: options.method ?? 'GET',
        headers: { host: options.host ?? 'example.com', ...options.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface RawBackend extends AsyncDisposable {
  server: net.Server;
  port: number;
  /** Connections accepted so far. */
  connections: number;
  /** Every request head read, in order. */
  requests: string[];
}

/**
 * A raw TCP backend: calls `answer` for every request head it reads (heads only; bodies are not
 * framed), with the head's index over all connections. Disposing closes its open sockets too.
 */
export async function rawBackend(
  answer: (head: string, socket: net.Socket, index: number) => void,
): Promise<RawBackend> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer();
  const backend: RawBackend = {
    server,
    port: 0,
    connections: 0,
    requests: [],
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  server.on('connection', (socket) => {
    backend.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end !== -1; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        backend.requests.push(head);
        answer(head, socket, backend.requests.length - 1);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  backend.port = (server.address() as net.AddressInfo).port;
  return backend;
}

export async function gatewayFor(port: number, config = testConfig()) {
  const i = instance('raw-0', 'raw', 0, port);
  const feed = new MemoryRoutingFeed({
    machines: [machine()],
    revisions: [revision('raw', [{ hostnames: ['example.com'] }])],
    releases: [release('raw', [i])],
    instances: [i],
  });
  const g = await runGateway(feed, config);
  await g.gateway.follower.waitForSeq(0, 5000);
  return g;
}

/** Writes `text` on one client connection and reads until `done(received)` or the socket ends. */
export function rawClient(port: number, text: string, done: (received: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out; received so far:\n${received}`));
    }, 5000);
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
      if (done(received)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(received);
      }
    });
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on('error', reject);
  });
}
