/**
 * Ending a child process a fixture started: `stopChild` asks (SIGTERM) and insists (SIGKILL) after
 * a grace period, `killChild` kills at once (crash tests). Both resolve once it has exited.
 */
import type { ChildProcess } from 'node:child_process';

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (!running(child)) return;
  const done = exited(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  child.kill('SIGTERM');
  await done;
  clearTimeout(timer);
}

export async function killChild(child: ChildProcess): Promise<void> {
  if (!running(child)) return;
  const done = exited(child);
  child.kill('SIGKILL');
  await done;
}
