/** ployzd's entry: an error that stops it is `CODE: message` on stderr and the code's exit status. */
import { execFile } from 'node:child_process';
import { exitStatus } from '@ployz/types';
import { describe, expect, it } from 'vitest';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;

function ployzd(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--conditions=ployz-source', MAIN, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('ployzd main', () => {
  it('bad configuration is CONFIG_INVALID with its exit status (2), no stack', async () => {
    const r = await ployzd('run', '--gateway-port', 'many');
    expect(r.stderr).toMatch(/^CONFIG_INVALID: invalid --gateway-port \(PLOYZ_GATEWAY_PORT\)/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(exitStatus('CONFIG_INVALID'));
    expect(r.code).toBe(2);
  });

  it('an unknown command is INVALID_ARGUMENT (2); --version is 0', async () => {
    const [bad, version] = await Promise.all([ployzd('serve'), ployzd('--version')]);
    expect(bad.stderr).toBe('INVALID_ARGUMENT: unknown command serve; try: ployzd run\n');
    expect(bad.code).toBe(exitStatus('INVALID_ARGUMENT'));
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^ployzd \d/);
  });
});
