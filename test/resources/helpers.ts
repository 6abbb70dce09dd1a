import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What an SDK v3 call rejected with: the EC2 code (`err.name`, also `err.Code`), HTTP status, message. */
export interface SdkError {
  name: string;
  code?: string;
  status?: number;
  message: string;
}

/** Awaits `p`, which must fail with an EC2 error; returns what the SDK surfaces. */
export async function failure(p: Promise<unknown>): Promise<SdkError> {
  try {
    await p;
  } catch (e) {
    const err = e as { name: string; Code?: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: err.name, code: err.Code, status: err.$metadata?.httpStatusCode, message: err.message };
  }
  throw new Error('expected the call to fail');
}

/** Runs `fn` (sync or async) with a temporary directory that is removed afterwards. */
export function withTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'koala-res-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  let result: T;
  try {
    result = fn(dir);
  } catch (e) {
    cleanup();
    throw e;
  }
  if (result instanceof Promise) return result.finally(cleanup) as T;
  cleanup();
  return result;
}

/** `ssh-keygen` key pair: { privatePath, publicLine }. */
export function sshKeygen(dir: string, type: 'rsa' | 'ed25519', name = 'k'): { privatePath: string; publicLine: string } {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', 'test@koala', '-f', path]);
  return { privatePath: path, publicLine: readFileSync(path + '.pub', 'utf8').trim() };
}

/** Writes `content` with mode 0600 and returns the path. */
export function writeSecret(dir: string, name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content.endsWith('\n') ? content : content + '\n', { mode: 0o600 });
  return p;
}

export function sh(cmd: string, args: string[], input?: string | Buffer): string {
  return execFileSync(cmd, args, { input, encoding: 'utf8' }).trim();
}

/** `openssl <digest> -c` of `der` → `aa:bb:…`. */
export function opensslDigest(digest: 'sha1' | 'md5', der: Buffer): string {
  return sh('openssl', [digest, '-c'], der).split('= ')[1]!.trim();
}

/** The base64 after `SHA256:` in `ssh-keygen -l -E sha256 -f path`. */
export function sshKeygenSha256(path: string): string {
  return /SHA256:([A-Za-z0-9+/]+)/.exec(sh('ssh-keygen', ['-l', '-E', 'sha256', '-f', path]))![1]!;
}
