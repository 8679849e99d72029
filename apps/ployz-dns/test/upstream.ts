/**
 * A small real UDP resolver for forwarding tests: answers A queries for names it knows, NXDOMAIN
 * for others, or stays silent (to test timeouts).
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';

export interface TestUpstream {
  host: string;
  port: number;
  queries: number;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function startUpstream(records: Record<string, string>, silent = false): Promise<TestUpstream> {
  const socket = createSocket('udp4');
  const state = { queries: 0 };
  socket.on('message', (msg, rinfo) => {
    state.queries += 1;
    if (silent || msg.length < 12) return;
    let offset = 12;
    const labels: string[] = [];
    while (offset < msg.length && msg[offset] !== 0) {
      const length = msg[offset] as number;
      labels.push(msg.toString('latin1', offset + 1, offset + 1 + length));
      offset += length + 1;
    }
    const questionEnd = offset + 5;
    const name = labels.join('.').toLowerCase();
    const ip = records[name];
    const header = Buffer.from(msg.subarray(0, questionEnd));
    header[2] = 0x80 | ((msg[2] as number) & 0x01);
    header[3] = 0x80 | (ip === undefined ? 3 : 0);
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
    socket.send(Buffer.concat(parts), rinfo.port, rinfo.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const close = () => new Promise<void>((resolve) => socket.close(() => resolve()));
  return {
    host: '127.0.0.1',
    port: socket.address().port,
    get queries() {
      return state.queries;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
