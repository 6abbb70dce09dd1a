import { BusRemoteError, codedError } from '@koala/messaging';

/**
 * For requests forwarded to an NC: keep the NC's own error code, and turn "nobody answered"
 * into `Unavailable` so the CLC can tell a refused action from a node that is down.
 */
export function nodeErrors(node: string) {
  return (e: unknown): never => {
    if (e instanceof BusRemoteError) throw codedError(e.code, e.message);
    throw codedError('Unavailable', `node ${node} does not answer: ${(e as Error).message}`);
  };
}
