/**
 * The `exec` tunnel: the instance is chosen from the store (the one asked for, else the first
 * running instance of the committed release), the command starts on the instance's machine —
 * here through Docker, elsewhere through `exec_open` / `exec_io` — and the tunnel's frames carry
 * stdin, a resize, stdout, stderr and finally the exit code.
 */
import { type Duplex, PassThrough, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  type ExecOpenBody,
  encodeFrame,
  encodeFrames,
  FRAME,
  FrameReader,
  type OpsCommands,
  type RpcClient,
  TtyResize,
} from '@ployz/protocol';
import { type InstanceRecord, PloyzError, type ReleaseRecord } from '@ployz/types';
import type { ExecProcess } from './instance-access.ts';
import { unreachableError } from './logs.ts';

/** The instance an exec runs in: the one named (it must be running), else the release's first running one. */
export function execTarget(
  target: { namespace: string; service: string; instance?: string | undefined },
  instances: readonly InstanceRecord[],
  release: ReleaseRecord | undefined,
): InstanceRecord {
  const running = instances.filter((i) => i.state === 'running' && i.container_id !== null);
  const chosen =
    target.instance !== undefined
      ? running.find((i) => i.id === target.instance)
      : (running.find((i) => release?.slots.some((s) => s.instance === i.id) && i.ready) ?? running[0]);
  if (chosen === undefined) {
    const which =
      target.instance === undefined ? 'no running instance' : `no running instance ${target.instance}`;
    throw new PloyzError(
      'NO_RUNNING_INSTANCE',
      `${target.namespace}/${target.service} has ${which}; see ployzctl ps -n ${target.namespace}`,
      { details: { ...target } },
    );
  }
  return chosen;
}

/** An exec on another machine, pumped over `exec_io`: the same face as a local one. */
export async function remoteExec(client: RpcClient<OpsCommands>, body: ExecOpenBody): Promise<ExecProcess> {
  const { machine } = body;
  const call = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      throw unreachableError(error, machine) ?? error;
    }
  };
  const { session } = await call(() => client.call(machine, 'exec_open', body, { timeoutMs: 15_000 }));
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const pending: Buffer[] = [];
  let eof = false;
  let eofSent = false;
  let resize: { cols: number; rows: number } | null = null;
  const stdin = new Writable({
    write(chunk: Buffer, _encoding, done) {
      pending.push(chunk);
      done();
    },
    final(done) {
      eof = true;
      done();
    },
  });
  const exited = (async () => {
    for (;;) {
      const input = Buffer.concat(pending.splice(0));
      const sendEof = eof && !eofSent;
      const answer = await call(() =>
        client.call(
          machine,
          'exec_io',
          {
            machine,
            session,
            stdin: input.toString('base64'),
            eof: sendEof,
            resize,
            wait_ms: input.length > 0 ? 0 : 250,
          },
          { timeoutMs: 15_000 },
        ),
      );
      if (sendEof) eofSent = true;
      resize = null;
      if (answer.stdout !== '') stdout.write(Buffer.from(answer.stdout, 'base64'));
      if (answer.stderr !== '') stderr.write(Buffer.from(answer.stderr, 'base64'));
      if (answer.exit_code !== null) {
        stdout.end();
        stderr.end();
        return answer.exit_code;
      }
    }
  })();
  return {
    stdin: body.stdin ? stdin : null,
    stdout,
    stderr,
    resize: async (size) => {
      resize = size;
    },
    exited,
  };
}

/** Carries one exec over an accepted tunnel until its exit frame; the client going away ends stdin. */
export async function pumpExec(socket: Duplex, proc: ExecProcess): Promise<void> {
  const reader = new FrameReader();
  const endStdin = () => {
    if (proc.stdin !== null) proc.stdin.end();
  };
  socket.on('data', (chunk: Buffer) => {
    let frames: ReturnType<FrameReader['push']>;
    try {
      frames = reader.push(chunk);
    } catch {
      socket.destroy();
      return;
    }
    for (const frame of frames) {
      if (frame.kind === FRAME.stdin) proc.stdin?.write(frame.payload);
      else if (frame.kind === FRAME.eof) endStdin();
      else if (frame.kind === FRAME.resize) {
        const size = TtyResize.safeParse(JSON.parse(frame.payload.toString('utf8') || 'null'));
        if (size.success) void proc.resize(size.data);
      }
    }
  });
  socket.once('close', endStdin);
  const forward = (kind: typeof FRAME.stdout | typeof FRAME.stderr) => (data: Buffer) => {
    for (const frame of encodeFrames(kind, data)) if (!socket.write(frame)) proc.stdout.pause();
  };
  socket.on('drain', () => proc.stdout.resume());
  proc.stdout.on('data', forward(FRAME.stdout));
  proc.stderr.on('data', forward(FRAME.stderr));
  const code = await proc.exited;
  await Promise.all([finished(proc.stdout).catch(() => {}), finished(proc.stderr).catch(() => {})]);
  if (!socket.destroyed) {
    socket.end(encodeFrame(FRAME.exit, JSON.stringify({ exit_code: code })));
  }
}
