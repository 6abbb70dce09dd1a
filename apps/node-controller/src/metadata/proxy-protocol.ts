import type { Socket } from 'node:net';

/** PROXY protocol v1 allows at most 107 bytes, CRLF included. */
export const PROXY_V1_MAX = 107;

export interface ProxyHeader {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = `${OCTET}(?:\\.${OCTET}){3}`;
const PORT = '(?:0|[1-9]\\d{0,4})';
const LINE = new RegExp(`^PROXY TCP4 (${IPV4}) (${IPV4}) (${PORT}) (${PORT})$`);

/** One v1 line without its CRLF; only TCP4 (the relay listens on an IPv4 address). */
export function parseProxyLine(line: string): ProxyHeader | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  const srcPort = Number(m[3]);
  const dstPort = Number(m[4]);
  if (srcPort > 65535 || dstPort > 65535) return undefined;
  return { src: m[1]!, dst: m[2]!, srcPort, dstPort };
}

/**
 * Reads the PROXY v1 line at the start of `socket`, then pauses it with the bytes after the line
 * put back (unshifted) for whoever reads next. Rejects on garbage, an over-long line, EOF or
 * `timeoutMs` without a complete line; the caller destroys the socket.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err?: Error, header?: ProxyHeader, rest?: Buffer) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.pause();
      if (err) return reject(err);
      if (rest && rest.length > 0) socket.unshift(rest);
      resolve(header!);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const lf = buf.indexOf(0x0a);
      if (lf < 0) {
        if (buf.length >= PROXY_V1_MAX) done(new Error('PROXY line too long'));
        return;
      }
      if (lf + 1 > PROXY_V1_MAX || lf === 0 || buf[lf - 1] !== 0x0d) return done(new Error('malformed PROXY line'));
      const header = parseProxyLine(buf.subarray(0, lf - 1).toString('latin1'));
      if (!header) return done(new Error('malformed PROXY line'));
      done(undefined, header, buf.subarray(lf + 1));
    };
    const onEnd = () => done(new Error('connection closed before the PROXY line'));
    const onError = (err: Error) => done(err);
    const timer = setTimeout(() => done(new Error('no PROXY line in time')), timeoutMs);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
  });
}
