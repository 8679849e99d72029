/**
 * This machine's command listener: request/reply on
 * `ployz.v1.<inst>.<auth>.rpc.node.<machine>.<command>` with a queue group per machine
 * (DESIGN.md §4). Handlers are registered by name (the daemon adds ping/status/capacity, the deploy
 * engine adds its own); replies are `{ ok: true, result }` or `{ ok: false, error: {code, message} }`.
 * Ephemeral: stopped with the daemon, restarted at every start.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { escapeToken, machinePrefix } from '@ployz/protocol';
import { isPloyzError, PloyzError } from '@ployz/types';

export type RpcHandler = (request: unknown) => Promise<unknown> | unknown;

/** The subject scheme is @ployz/protocol's (same escaping as its RpcClient). */
export function escapeSubjectToken(token: string): string {
  return escapeToken(token);
}

export function nodeSubjectPrefix(installation: string, authority: string, machineId: string): string {
  return machinePrefix({ installation, authority }, machineId);
}

export class AgentRpc {
  readonly #handlers = new Map<string, RpcHandler>();
  #sub: Subscription | null = null;

  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  register(command: string, handler: RpcHandler): void {
    if (!/^[a-z][a-z0-9_]*$/.test(command))
      throw new PloyzError('INTERNAL', `bad RPC command name ${command}`);
    if (this.#handlers.has(command))
      throw new PloyzError('INTERNAL', `RPC command ${command} registered twice`);
    this.#handlers.set(command, handler);
  }

  commands(): string[] {
    return [...this.#handlers.keys()].sort();
  }

  start(nc: NatsConnection): void {
    if (this.#sub) return;
    this.#sub = nc.subscribe(`${this.prefix}.*`, {
      queue: this.prefix,
      callback: (error, msg) => {
        if (error) return;
        const command = msg.subject.slice(this.prefix.length + 1);
        void this.#answer(command, msg.data).then((reply) => msg.respond(JSON.stringify(reply)));
      },
    });
  }

  async #answer(command: string, data: Uint8Array): Promise<unknown> {
    const handler = this.#handlers.get(command);
    if (!handler) {
      return {
        ok: false,
        error: {
          code: 'RPC_BAD_REQUEST',
          message: `unknown command ${command}; known: ${this.commands().join(', ')}`,
        },
      };
    }
    let request: unknown = null;
    try {
      request = data.length === 0 ? null : JSON.parse(new TextDecoder().decode(data));
    } catch {
      return { ok: false, error: { code: 'RPC_BAD_REQUEST', message: 'the request is not JSON' } };
    }
    // @ployz/protocol's RpcClient wraps the request as { v: 1, caller, request }; accept both.
    if (
      typeof request === 'object' &&
      request !== null &&
      (request as { v?: unknown }).v === 1 &&
      'request' in request
    ) {
      request = (request as { request: unknown }).request;
    }
    try {
      return { ok: true, result: await handler(request) };
    } catch (error) {
      if (isPloyzError(error)) return { ok: false, error: error.toJSON() };
      return {
        ok: false,
        error: { code: 'RPC_REMOTE_ERROR', message: error instanceof Error ? error.message : String(error) },
      };
    }
  }

  async stop(): Promise<void> {
    const sub = this.#sub;
    this.#sub = null;
    if (sub && !sub.isClosed()) await sub.drain().catch(() => sub.unsubscribe());
  }
}
