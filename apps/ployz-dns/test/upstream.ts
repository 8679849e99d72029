/**
 * A small real resolver for forwarding tests, on UDP and TCP (same port): answers A queries for
 * names it knows, NXDOMAIN for others, or stays silent (to test timeouts). Names in `tcpOnly`
 * answer over UDP with TC set and no records, and fully over TCP.
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer } from 'node:net';

export interface TestUpstream {
  host: string;
  port: number;
  queries: number;
  tcpQueries: number;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function startUpstream(
  records: Record<string, string>,
  silent = false,
  tcpOnly: string[] = [],
): Promise<TestUpstream> {
  const state = { queries: 0, tcpQueries: 0 };
  const answer = (msg: Buffer, viaTcp: boolean): Buffer => {
    let offset = 12;
    const labels: string[] = [];
    while (offset < msg.length && msg[offset] !== 0) {
      const length = msg[offset] as number;
      labels.push(msg.toString('latin1', offset + 1, offset + 1 + length));
      offset += length + 1;
    }
    const questionEnd = offset + 5;
    const name = labels.join('.').toLowerCase();
    const truncated = !viaTcp && tcpOnly.includes(name);
    const ip = truncated ? undefined : records[name];
    const header = Buffer.from(msg.subarray(0, questionEnd));
    header[2] = 0x80 | ((msg[2] as number) & 0x01) | (truncated ? 0x02 : 0);
    header[3] = 0x80 | (ip === undefined && !truncated ? 3 : 0);
    header.writeUInt16BE(ip === undefined ? 0 : 1, 6);
    header.writeUInt32BE(0, 8);
    const parts = [header];
    if (ip !== undefined) {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0);
      rr.writeUInt16BE(1, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(300, 6);
      rr.writeUInt16BE(4, 10);
      ip.split('.').forEach((octet, i) => {
        rr[12 + i] = Number(octet);
      });
      parts.push(rr);
    }
    return Buffer.concat(parts);
  };
  const bindUdp = async () => {
    const udp = createSocket('udp4');
    udp.on('message', (msg, rinfo) => {
      state.queries += 1;
      if (silent || msg.length < 12) return;
      udp.send(answer(msg, false), rinfo.port, rinfo.address);
    });
    udp.bind(0, '127.0.0.1');
    await once(udp, 'listening');
    return udp;
  };
  const connections = new Set<import('node:net').Socket>();
  const tcp = createServer((connection) => {
    connections.add(connection);
    connection.on('close', () => connections.delete(connection));
    connection.on('error', () => connection.destroy());
    connection.on('data', (chunk: Buffer) => {
      state.tcpQueries += 1;
      if (silent || chunk.length < 14) return;
      const response = answer(chunk.subarray(2, 2 + chunk.readUInt16BE(0)), true);
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(response.length);
      connection.end(Buffer.concat([prefix, response]));
    });
  });
  // TCP must get the UDP port's number; another process may hold it for TCP: pick again.
  let socket = await bindUdp();
  for (let attempt = 1; ; attempt += 1) {
    const port = socket.address().port;
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, '127.0.0.1', () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      break;
    } catch (error) {
      socket.close();
      if (attempt >= 20 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      socket = await bindUdp();
    }
  }
  const port = socket.address().port;
  const close = async () => {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    for (const connection of connections) connection.destroy();
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
  };
  return {
    host: '127.0.0.1',
    port,
    get queries() {
      return state.queries;
    },
    get tcpQueries() {
      return state.tcpQueries;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
