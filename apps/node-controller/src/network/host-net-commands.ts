import { execFile } from 'node:child_process';
import type { HostNetCommands } from './network-state-view.js';

/** A host command that failed: its argv, exit status and stderr in the message. */
export class HostCommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | string | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`${argv.join(' ')} failed (${exitCode}): ${stderr.trim() || stdout.trim() || 'no output'}`);
    this.name = 'HostCommandError';
  }
}

/**
 * Runs `ip`, `iptables-restore`, `ipset`, `sysctl` directly (no shell: every argument is one
 * argv entry), inside `ip netns exec NETNS` when the node's guest networking lives in a namespace.
 */
export class ExecHostNetCommands implements HostNetCommands {
  constructor(private readonly opts: { netns?: string; defaultTimeoutMs?: number } = {}) {}

  run(argv: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<{ stdout: string; stderr: string }> {
    if (!argv.length) return Promise.reject(new Error('empty command'));
    const full = this.opts.netns ? ['ip', 'netns', 'exec', this.opts.netns, ...argv] : [...argv];
    return new Promise((resolve, reject) => {
      const child = execFile(
        full[0]!,
        full.slice(1),
        { timeout: opts.timeoutMs ?? this.opts.defaultTimeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } },
        (err, stdout, stderr) => {
          if (err) {
            const code = (err as NodeJS.ErrnoException & { code?: number | string }).code ?? (err as { signal?: string }).signal ?? null;
            reject(new HostCommandError(full, code, String(stdout), String(stderr)));
          } else resolve({ stdout: String(stdout), stderr: String(stderr) });
        },
      );
      child.stdin?.on('error', () => undefined); // the command may exit before reading its input
      if (opts.input !== undefined) child.stdin?.end(opts.input);
      else child.stdin?.end();
    });
  }
}
