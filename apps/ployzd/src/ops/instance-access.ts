/**
 * What a machine does for `logs` and `exec` on one of its own instances, whoever asked (the local
 * API on this machine, or another machine's ployzd over `logs_read` / `exec_open` / `exec_io`).
 * The container is found by its workload name and touched only when its labels say it is the
 * managed workload asked for, on this machine (RPC_NOT_MANAGED otherwise).
 */
import { randomBytes } from 'node:crypto';
import { type Duplex, PassThrough } from 'node:stream';
import type { ExecOpenBody, LogsReadBody, LogsReadResult } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import type Docker from 'dockerode';
import { dockerError, dockerStatus, inspectOrNull } from '../runtime/docker-errors.ts';
import { workloadName } from '../workloads/container.ts';
import { notOurWorkload } from '../workloads/rpc-handlers.ts';
import { advanceCursor, afterCursor, dockerLogLines, dockerSince } from './log-lines.ts';

export interface Workload {
  machine: string;
  namespace: string;
  service: string;
  instance: string;
}

/** The workload's container inspect; null when it is gone. RPC_NOT_MANAGED when it is not ours. */
export async function workloadContainer(
  docker: Docker,
  prefix: string,
  w: Workload,
): Promise<Docker.ContainerInspectInfo | null> {
  const name = workloadName(prefix, w.instance);
  const info = await inspectOrNull(docker, name);
  if (info === null) return null;
  const why = notOurWorkload(info.Config.Labels ?? {}, w);
  if (why !== null) {
    throw new PloyzError('RPC_NOT_MANAGED', `container ${name} was left alone: ${why}`, {
      details: { container: name, reason: why },
    });
  }
  return info;
}

/** One chunk of an instance's log lines after the body's cursor (at most `limit`). */
export async function readLogs(docker: Docker, prefix: string, body: LogsReadBody): Promise<LogsReadResult> {
  const info = await workloadContainer(docker, prefix, body);
  if (info === null) return { lines: [], cursor: body.after, complete: true, gone: true };
  const from = body.after?.at ?? body.since;
  const options = {
    stdout: true,
    stderr: true,
    timestamps: true,
    follow: false as const,
    ...(from !== null ? { since: dockerSince(from) } : {}),
    ...(body.after === null && body.tail !== null ? { tail: body.tail } : {}),
  };
  let raw: Buffer;
  try {
    // Docker reads `since` as `<seconds>.<nanoseconds>` text; dockerode's type says number.
    raw = await docker
      .getContainer(info.Id)
      .logs(options as unknown as Docker.ContainerLogsOptions & { follow: false });
  } catch (error) {
    // 404: removed; 409: dead or being removed (a deploy's cleanup) — nothing more will come.
    const status = dockerStatus(error);
    if (status === 404 || status === 409)
      return { lines: [], cursor: body.after, complete: true, gone: true };
    throw dockerError(error, `reading the logs of ${info.Name}`);
  }
  const fresh = afterCursor(dockerLogLines(raw, info.Config.Tty === true), body.after);
  const lines = fresh.slice(0, body.limit);
  return {
    lines,
    cursor: advanceCursor(body.after, lines),
    complete: lines.length === fresh.length,
    gone: false,
  };
}

export interface ExecProcess {
  /** stdin of the process (when attached); end() closes it. */
  stdin: NodeJS.WritableStream | null;
  stdout: PassThrough;
  stderr: PassThrough;
  resize(size: { cols: number; rows: number }): Promise<void>;
  /** The exit code, once the process has ended and its output is read. */
  exited: Promise<number>;
}

/** Starts a command in the workload's running container, attached (Docker exec, hijacked). */
export async function startExec(docker: Docker, prefix: string, body: ExecOpenBody): Promise<ExecProcess> {
  const info = await workloadContainer(docker, prefix, body);
  if (info === null || info.State.Running !== true) {
    throw new PloyzError(
      'NO_RUNNING_INSTANCE',
      `instance ${body.instance} of ${body.namespace}/${body.service} is not running on ${body.machine}; see ployzctl ps -n ${body.namespace}`,
      { details: { instance: body.instance, machine: body.machine } },
    );
  }
  let exec: Docker.Exec;
  let stream: Duplex;
  try {
    exec = await docker.getContainer(info.Id).exec({
      Cmd: body.command,
      AttachStdin: body.stdin,
      AttachStdout: true,
      AttachStderr: true,
      Tty: body.tty,
    });
    stream = (await exec.start({
      hijack: true,
      stdin: body.stdin,
      Tty: body.tty,
      ...(body.size ? { ConsoleSize: [body.size.rows, body.size.cols] } : {}),
    })) as Duplex;
  } catch (error) {
    throw dockerError(error, `starting ${JSON.stringify(body.command[0])} in ${info.Name}`);
  }
  // Engines before API 1.42 ignore ConsoleSize: size the terminal once it exists.
  if (body.tty && body.size !== null)
    await exec.resize({ h: body.size.rows, w: body.size.cols }).catch(() => {});
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  if (body.tty) stream.pipe(stdout);
  else docker.modem.demuxStream(stream, stdout, stderr);
  const ended = new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', resolve);
  });
  const exited = ended.then(async () => {
    if (!body.tty) {
      stdout.end();
      stderr.end();
    } else stderr.end();
    // The stream ends when the process closes its output; the engine records the exit code just after.
    for (let i = 0; i < 100; i++) {
      const state = await exec.inspect().catch(() => null);
      if (state !== null && state.Running === false && state.ExitCode !== null) return state.ExitCode;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new PloyzError(
      'DOCKER_REFUSED',
      `the engine did not report the exit code of the exec in ${info.Name}`,
    );
  });
  return {
    stdin: body.stdin ? stream : null,
    stdout,
    stderr,
    resize: async (size) => {
      await exec.resize({ h: size.rows, w: size.cols }).catch(() => {});
    },
    exited,
  };
}

/**
 * Exec sessions other machines pump with `exec_io`: output buffered between calls, stdin
 * written as it comes, the exit code kept until the last output is taken. A session nobody
 * polls for a minute is dropped (its process keeps what the engine does with a closed stdin).
 */
export class ExecSessions {
  readonly #sessions = new Map<
    string,
    {
      proc: ExecProcess;
      out: Buffer[];
      err: Buffer[];
      exit: number | null;
      wake: () => void;
      touched: number;
    }
  >();

  async open(docker: Docker, prefix: string, body: ExecOpenBody): Promise<string> {
    const proc = await startExec(docker, prefix, body);
    const id = randomBytes(16).toString('hex');
    const session = {
      proc,
      out: [] as Buffer[],
      err: [] as Buffer[],
      exit: null as number | null,
      wake: () => {},
      touched: Date.now(),
    };
    proc.stdout.on('data', (b: Buffer) => {
      session.out.push(b);
      session.wake();
    });
    proc.stderr.on('data', (b: Buffer) => {
      session.err.push(b);
      session.wake();
    });
    void proc.exited.then(
      (code) => {
        session.exit = code;
        session.wake();
      },
      () => {
        session.exit = 255;
        session.wake();
      },
    );
    this.#sessions.set(id, session);
    this.#sweep();
    return id;
  }

  async io(body: {
    session: string;
    stdin: string;
    eof: boolean;
    resize: { cols: number; rows: number } | null;
    wait_ms: number;
  }): Promise<{ stdout: string; stderr: string; exit_code: number | null }> {
    const session = this.#sessions.get(body.session);
    if (session === undefined)
      throw new PloyzError(
        'NOT_FOUND',
        `no exec session ${body.session} on this machine (it ended or expired)`,
      );
    session.touched = Date.now();
    if (body.resize !== null) await session.proc.resize(body.resize);
    if (body.stdin !== '' && session.proc.stdin !== null)
      session.proc.stdin.write(Buffer.from(body.stdin, 'base64'));
    if (body.eof && session.proc.stdin !== null) session.proc.stdin.end();
    if (session.out.length === 0 && session.err.length === 0 && session.exit === null && body.wait_ms > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, body.wait_ms);
        session.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      session.wake = () => {};
    }
    const stdout = Buffer.concat(session.out.splice(0)).toString('base64');
    const stderr = Buffer.concat(session.err.splice(0)).toString('base64');
    const exit = session.exit;
    if (exit !== null) this.#sessions.delete(body.session);
    return { stdout, stderr, exit_code: exit };
  }

  #sweep(): void {
    const cutoff = Date.now() - 60_000;
    for (const [id, s] of this.#sessions) if (s.touched < cutoff) this.#sessions.delete(id);
  }
}
