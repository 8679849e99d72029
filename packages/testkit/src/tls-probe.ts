/**
 * What a TLS client sees of a server: `tlsHandshake` connects with an SNI name and reports the
 * certificate served (serial, whether it verifies against `ca`), leaving the socket open;
 * `requestOn` sends one HTTP/1.1 request on an open socket (keep-alive) and reads one answer
 * (content-length or chunked; ASCII bodies), so a
 * test can tell that a connection opened before a certificate swap still works.
 */
import tls from 'node:tls';

export interface Handshake {
  socket: tls.TLSSocket;
  serial: string;
  authorized: boolean;
  authorizationError: string | null;
}

export function tlsHandshake(target: {
  host: string;
  port: number;
  servername: string;
  ca: string;
  timeoutMs?: number;
}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: target.host,
      port: target.port,
      servername: target.servername,
      ca: target.ca,
      rejectUnauthorized: false,
    });
    socket.once('secureConnect', () => {
      socket.setTimeout(0);
      resolve({
        socket,
        serial: socket.getPeerCertificate().serialNumber,
        authorized: socket.authorized,
        authorizationError: socket.authorizationError === null ? null : String(socket.authorizationError),
      });
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before the handshake finished')));
    socket.setTimeout(target.timeoutMs ?? 5_000, () => {
      socket.destroy();
      reject(new Error('handshake timed out'));
    });
  });
}

/** A chunked body (`<hex size>\r\n<data>\r\n` … `0\r\n\r\n`), as text. */
function dechunk(text: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const nl = text.indexOf('\r\n', at);
    const size = Number.parseInt(text.slice(at, nl), 16);
    if (!(size > 0)) return out;
    out += text.slice(nl + 2, nl + 2 + size);
    at = nl + 2 + size + 2;
  }
}

/** One HTTP/1.1 GET on an open TLS socket (keep-alive); resolves with the status and body. */
export function requestOn(
  socket: tls.TLSSocket,
  path: string,
  host: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buf.slice(0, end);
      const rest = buf.slice(end + 4);
      let body: string;
      if (/transfer-encoding: *chunked/i.test(head)) {
        if (!rest.includes('0\r\n\r\n')) return;
        body = dechunk(rest);
      } else {
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? '0');
        if (rest.length < length) return;
        body = rest.slice(0, length);
      }
      done();
      resolve({ status: Number(buf.slice(9, 12)), body });
    };
    const onError = (error: Error) => {
      done();
      reject(error);
    };
    const onClose = () => onError(new Error('connection closed before the answer'));
    const done = () => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    if (socket.destroyed) {
      reject(new Error('connection already closed'));
      return;
    }
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  });
}
