import { execFile } from 'node:child_process';

export interface CommandResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a program with an argument array (never a shell string). Behind an interface for fakes. */
export interface CommandRunner {
  run(program: string, args: string[]): Promise<CommandResult>;
}

export const execRunner: CommandRunner = {
  run: (program, args) =>
    new Promise((resolve) => {
      execFile(program, args, { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : 1) : 0;
        resolve({ stdout: String(stdout), stderr: String(stderr), code });
      });
    }),
};
