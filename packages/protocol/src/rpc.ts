/**
 * Machine-command RPC over NATS request/reply.
 *
 * Commands form a typed registry (`defineCommands`): name → request schema + response schema.
 * The daemon registers `ping`/`status`/`capacity`, the deploy engine `start_instance`… by
 * extending a registry with `{ ...a, ...b }`. The server validates requests, the client
 * validates before sending and validates the reply.
 *
 * Wire: request `{ v: 1, caller, request }`; reply `{ ok: true, result }` or
 * `{ ok: false, error: { code, message, details? } }`. A server-side PloyzError is rethrown on
 * the caller with the same code. No responder → RPC_NO_RESPONDERS, no reply in time →
 * RPC_TIMEOUT; both are returned to the caller at once: nothing is queued or retried.
 *
 * Observing: every call (client side) and every answer (server side) is published on the
 * `node:diagnostics_channel` channel `RPC_TIMING_CHANNEL` as an `RpcTiming`, only while someone
 * subscribes (ployzd's metrics do); nothing is measured otherwise.
 */
import { channel } from 'node:diagnostics_channel';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { isErrorCode, PloyzError, toErrorBody } from '@ployz/types';
import { z } from 'zod';
import { issuePath, WireErrorBody } from './error-body.ts';
import type { Sendable } from './plain.ts';
import { commandSubject, machinePrefix, machineQueue, type RpcScope, unescapeToken } from './subjects.ts';

export interface CommandSpec<Req extends z.ZodType = z.ZodType, Res extends z.ZodType = z.ZodType> {
  request: Req;
  response: Res;
  /** One line for `ployz status` / docs. */
  description?: string;
}
export type CommandRegistry = Record<string, CommandSpec>;

const COMMAND_NAME = /^[a-z][a-z0-9_]*$/;

/** Checks names and returns the registry unchanged (typed). */
export function defineCommands<R extends CommandRegistry>(registry: R): R {
  for (const name of Object.keys(registry)) {
    if (!COMMAND_NAME.test(name)) {
      throw new PloyzError('INVALID_ARGUMENT', `RPC command name '${name}' must match ${COMMAND_NAME}`);
    }
  }
  return registry;
}

export type RequestOf<R extends CommandRegistry, C extends keyof R> = Sendable<z.input<R[C]['request']>>;
export type ResponseOf<R extends CommandRegistry, C extends keyof R> = z.output<R[C]['response']>;

export const RpcRequestEnvelope = z.object({
  v: z.literal(1),
  /** Who asks (machine id or tool), for the handler's logs. */
  caller: z.string().nullable(),
  request: z.unknown(),
});
export type RpcRequestEnvelope = z.infer<typeof RpcRequestEnvelope>;

export const RpcReplyEnvelope = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), result: z.unknown() }),
  z.object({ ok: z.literal(false), error: WireErrorBody }),
]);
export type RpcReplyEnvelope = z.infer<typeof RpcReplyEnvelope>;

export interface RpcContext {
  command: string;
  caller: string | null;
  machine: string;
}

export type RpcHandler<R extends CommandRegistry, C extends keyof R> = (
  request: z.output<R[C]['request']>,
  ctx: RpcContext,
) => Promise<Sendable<z.input<R[C]['response']>>> | Sendable<z.input<R[C]['response']>>;

/** One handler per command of a registry (what a daemon plugin hands over with its registry). */
export type CommandHandlers<R extends CommandRegistry> = { [C in keyof R & string]: RpcHandler<R, C> };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One machine's command listener (queue group per machine). */
/** The diagnostics channel RPC timings are published on (`subscribe(RPC_TIMING_CHANNEL, …)`). */
export const RPC_TIMING_CHANNEL = 'ployz:rpc:timing';

/** One RPC as measured by its caller (`client`: send to reply) or its answerer (`server`: dispatch). */
export interface RpcTiming {
  side: 'client' | 'server';
  /** The command; `unknown` for a request to a command this server has no handler for. */
  command: string;
  seconds: number;
  /** null when it succeeded; else the error code the caller got (`RPC_TIMEOUT`, a handler's code…). */
  code: string | null;
}

const timings = channel(RPC_TIMING_CHANNEL);

function publishTiming(side: RpcTiming['side'], command: string, started: number, code: string | null): void {
  const timing: RpcTiming = { side, command, seconds: (performance.now() - started) / 1000, code };
  timings.publish(timing);
}

export class RpcServer<R extends CommandRegistry> {
  readonly machine: string;
  readonly prefix: string;
  readonly #nc: NatsConnection;
  readonly #scope: RpcScope;
  readonly #registry: R;
  readonly #handlers = new Map<string, BoundCommand>();
  #sub: Subscription | null = null;
  readonly #inflight = new Set<Promise<void>>();

  constructor(options: { nc: NatsConnection; scope: RpcScope; machine: string; commands: R }) {
    this.#nc = options.nc;
    this.#scope = options.scope;
    this.machine = options.machine;
    this.#registry = options.commands;
    this.prefix = machinePrefix(options.scope, options.machine);
  }

  handle<C extends keyof R & string>(command: C, handler: RpcHandler<R, C>): this {
    if (!Object.hasOwn(this.#registry, command)) {
      throw new PloyzError('INVALID_ARGUMENT', `RPC command '${command}' is not in the registry`);
    }
    if (this.#handlers.has(command)) {
      throw new PloyzError('INVALID_ARGUMENT', `RPC command '${command}' has a handler already`);
    }
    this.#handlers.set(command, bindCommand<R[C]>(this.#registry[command], handler));
    return this;
  }

  /** Registers each given handler (as `handle` for every entry). */
  handleAll(handlers: Partial<CommandHandlers<R>>): this {
    for (const [command, handler] of Object.entries(handlers)) {
      if (handler) this.handle(command as keyof R & string, handler as RpcHandler<R, keyof R & string>);
    }
    return this;
  }

  /** Commands with a handler, sorted. */
  commands(): string[] {
    return [...this.#handlers.keys()].sort();
  }

  /** Subject this server answers `command` on. */
  subject(command: keyof R & string): string {
    return commandSubject(this.#scope, this.machine, command);
  }

  start(): void {
    if (this.#sub) return;
    this.#sub = this.#nc.subscribe(`${this.prefix}.*`, {
      queue: machineQueue(this.#scope, this.machine),
      callback: (err, msg) => {
        if (err) return;
        const p = this.#answer(msg).finally(() => this.#inflight.delete(p));
        this.#inflight.add(p);
      },
    });
  }

  /** Stops listening and waits for the replies in flight. */
  async stop(): Promise<void> {
    const sub = this.#sub;
    this.#sub = null;
    if (sub && !sub.isClosed()) await sub.drain().catch(() => sub.unsubscribe());
    await Promise.allSettled([...this.#inflight]);
  }

  async #answer(msg: Msg): Promise<void> {
    const started = timings.hasSubscribers ? performance.now() : -1;
    const reply = await this.#dispatch(msg);
    if (started >= 0) {
      const command = unescapeToken(msg.subject.slice(this.prefix.length + 1));
      const known = this.#handlers.has(command) ? command : 'unknown';
      publishTiming('server', known, started, reply.ok ? null : reply.error.code);
    }
    try {
      msg.respond(encoder.encode(JSON.stringify(reply)));
    } catch {
      // The connection is closing; the caller gets RPC_TIMEOUT.
    }
  }

  async #dispatch(msg: Msg): Promise<RpcReplyEnvelope> {
    const command = unescapeToken(msg.subject.slice(this.prefix.length + 1));
    const handler = this.#handlers.get(command);
    if (!handler) {
      return {
        ok: false,
        error: {
          code: 'RPC_BAD_REQUEST',
          message: `machine ${this.machine} has no command '${command}'; it knows: ${this.commands().join(', ')}`,
          details: { command, known: this.commands() },
        },
      };
    }
    let envelope: RpcRequestEnvelope;
    try {
      envelope = RpcRequestEnvelope.parse(JSON.parse(decoder.decode(msg.data)));
    } catch {
      return {
        ok: false,
        error: { code: 'RPC_BAD_REQUEST', message: 'the request is not a Ployz RPC envelope' },
      };
    }
    return handler(envelope.request, { command, caller: envelope.caller, machine: this.machine });
  }
}

/**
 * A registered handler bound to its command's schemas: validates the request, runs, validates
 * the response, and answers with the reply envelope (the server itself deals in `unknown`).
 */
type BoundCommand = (request: unknown, ctx: RpcContext) => Promise<RpcReplyEnvelope>;

/**
 * Binds `handler` to `spec`. Generic over the command spec `S` (the caller names it, `R[C]`):
 * zod's free `safeParse` keeps `z.output<S['request']>`, the handler's own request type.
 */
function bindCommand<S extends CommandSpec>(
  spec: S,
  handler: (request: z.output<S['request']>, ctx: RpcContext) => unknown,
): BoundCommand {
  return async (raw, ctx) => {
    const { command, machine } = ctx;
    try {
      const parsed = z.safeParse<S['request']>(spec.request, raw);
      if (!parsed.success) {
        const first = parsed.error.issues[0];
        const path = issuePath(first?.path ?? []);
        return {
          ok: false,
          error: {
            code: 'RPC_BAD_REQUEST',
            message: `request for '${command}' does not validate at ${path}: ${first?.message ?? 'invalid'}`,
            details: { command, path, issues: parsed.error.issues },
          },
        };
      }
      const result = await handler(parsed.data, ctx);
      const checked = spec.response.safeParse(result);
      if (!checked.success) {
        return {
          ok: false,
          error: {
            code: 'RPC_REMOTE_ERROR',
            message: `machine ${machine} produced an invalid '${command}' response`,
            details: { issues: checked.error.issues },
          },
        };
      }
      return { ok: true, result: checked.data };
    } catch (err) {
      return { ok: false, error: toErrorBody(err, 'RPC_REMOTE_ERROR') };
    }
  };
}

export interface CallOptions {
  /** Default: the client's timeout (5 s). */
  timeoutMs?: number;
  /** Stops waiting for the reply (the call rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** Calls commands on explicit machines. */
export class RpcClient<R extends CommandRegistry> {
  readonly #nc: NatsConnection;
  readonly #scope: RpcScope;
  readonly #registry: R;
  readonly #timeoutMs: number;
  readonly #caller: string | null;

  constructor(options: {
    nc: NatsConnection;
    scope: RpcScope;
    commands: R;
    timeoutMs?: number;
    caller?: string;
  }) {
    this.#nc = options.nc;
    this.#scope = options.scope;
    this.#registry = options.commands;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#caller = options.caller ?? null;
  }

  async call<C extends keyof R & string>(
    machine: string,
    command: C,
    request: RequestOf<R, C>,
    options: CallOptions = {},
  ): Promise<ResponseOf<R, C>> {
    if (!timings.hasSubscribers) return this.#call(machine, command, request, options);
    const started = performance.now();
    try {
      const response = await this.#call(machine, command, request, options);
      publishTiming('client', command, started, null);
      return response;
    } catch (err) {
      const code = err instanceof PloyzError ? err.code : options.signal?.aborted ? 'ABORTED' : 'INTERNAL';
      publishTiming('client', command, started, code);
      throw err;
    }
  }

  async #call<C extends keyof R & string>(
    machine: string,
    command: C,
    request: RequestOf<R, C>,
    options: CallOptions,
  ): Promise<ResponseOf<R, C>> {
    const spec = this.#registry[command];
    if (!spec) throw new PloyzError('RPC_BAD_REQUEST', `'${command}' is not a known RPC command`);
    const parsed = spec.request.safeParse(request);
    if (!parsed.success) {
      throw new PloyzError('RPC_BAD_REQUEST', `request for '${command}' does not validate`, {
        details: { command, issues: parsed.error.issues },
      });
    }
    const subject = commandSubject(this.#scope, machine, command);
    const timeout = options.timeoutMs ?? this.#timeoutMs;
    const envelope: RpcRequestEnvelope = { v: 1, caller: this.#caller, request: parsed.data };
    const signal = options.signal;
    signal?.throwIfAborted();
    let reply: Msg;
    try {
      const request = this.#nc.request(subject, encoder.encode(JSON.stringify(envelope)), {
        timeout,
        noMux: false,
      });
      reply = signal ? await raceAbort(request, signal) : await request;
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw rpcFailure(err, machine, command, timeout);
    }
    let body: RpcReplyEnvelope;
    try {
      body = RpcReplyEnvelope.parse(JSON.parse(decoder.decode(reply.data)));
    } catch (cause) {
      throw new PloyzError(
        'RPC_REMOTE_ERROR',
        `machine ${machine} answered '${command}' with a malformed reply`,
        {
          cause,
          details: { machine, command },
        },
      );
    }
    if (!body.ok) {
      const code = isErrorCode(body.error.code) ? body.error.code : 'RPC_REMOTE_ERROR';
      throw new PloyzError(code, body.error.message, {
        details: { ...(body.error.details ?? {}), machine, command, remote_code: body.error.code },
      });
    }
    const result = spec.response.safeParse(body.result);
    if (!result.success) {
      throw new PloyzError(
        'RPC_REMOTE_ERROR',
        `machine ${machine} answered '${command}' with an invalid response`,
        {
          details: { machine, command, issues: result.error.issues },
        },
      );
    }
    return result.data as ResponseOf<R, C>;
  }
}

function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Maps a nats.js request failure to RPC_NO_RESPONDERS / RPC_TIMEOUT (RpcFailure of the design). */
export function rpcFailure(err: unknown, machine: string, command: string, timeoutMs: number): PloyzError {
  const text =
    err instanceof Error
      ? `${err.name} ${err.message} ${String((err as { code?: unknown }).code ?? '')}`
      : String(err);
  const causeText =
    err instanceof Error && err.cause instanceof Error ? `${err.cause.name} ${err.cause.message}` : '';
  const all = `${text} ${causeText}`;
  const details = { machine, command };
  if (/no ?responders|503/i.test(all)) {
    return new PloyzError(
      'RPC_NO_RESPONDERS',
      `machine ${machine} has no listener for '${command}' right now (ployzd down or not connected); it is unavailable for this operation`,
      { cause: err, details },
    );
  }
  if (/timeout/i.test(all)) {
    return new PloyzError(
      'RPC_TIMEOUT',
      `machine ${machine} did not answer '${command}' within ${timeoutMs} ms`,
      {
        cause: err,
        details: { ...details, timeout_ms: timeoutMs },
      },
    );
  }
  return new PloyzError(
    'STORE_UNAVAILABLE',
    `cannot send '${command}' to machine ${machine}: NATS is not reachable`,
    {
      cause: err,
      details,
    },
  );
}
