import type { IncomingMessage } from 'node:http';
import { Ec2Error } from '@koala/ec2-query';

/** `413` with an EC2 error document. */
export function bodyTooLarge(limit: number): Ec2Error {
  return new Ec2Error('RequestEntityTooLarge', `The request body must not exceed ${limit} bytes.`, 413);
}

/**
 * Reads the whole request body, refusing more than `limit` bytes: a declared `content-length`
 * above the limit fails before reading anything, and bytes are counted while reading (chunked
 * bodies). On refusal the rest of the body is not read.
 */
export function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(bodyTooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err?: unknown) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      if (err) {
        req.pause();
        reject(err);
      } else resolve(Buffer.concat(chunks, size));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) return finish(bodyTooLarge(limit));
      chunks.push(c);
    };
    const onEnd = () => finish();
    const onError = (e: Error) => finish(e);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
