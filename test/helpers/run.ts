/** Runs a program to completion (bounded in time) and collects its exit code and output. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program to completion (bounded in time). Without `input` its stdin is closed; with it, a
 * program that exits before reading it (EPIPE on the pipe) is not an error: its exit code says why.
 */
export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    if (p.stdin) {
      p.stdin.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code !== 'EPIPE') reject(e);
      });
      p.stdin.end(opts.input);
    }
  });
}

export const XENHA_BIN = join(import.meta.dirname, '../../bin/xenha.js');

/** The xenha CLI, as `node bin/xenha.js …`: the compiled CLI in dist/, kept built by test/global-setup.ts. */
export function xenha(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return run(process.execPath, [XENHA_BIN, ...args], { env });
}
