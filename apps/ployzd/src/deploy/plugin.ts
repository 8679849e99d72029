/**
 * The deploy engine as a daemon plugin: RPC commands for the participant side
 * (deploy_start / deploy_ready / deploy_stop), local API routes for the CLI, and at every start
 * crash recovery before the first deploy is accepted.
 *
 * Local API (the shapes of @ployz/protocol's `api` table):
 *   POST /v1/deploy/preview   { manifest, filename?, format? }  → DeployPlan
 *   POST /v1/deploy/apply     { manifest, filename?, actor? }   → NDJSON: { progress: DeployEvent }…, { result: ApplyResult } | { error }
 *   POST /v1/deploy/rollback  { deploy_id, actor? }             → NDJSON, as apply
 *   GET  /v1/deploys?namespace=                                 → DeployStatusRecord[]
 *   GET  /v1/deploy?id=                                         → { status, phases, commits }
 *
 * Test-only: PLOYZ_TEST_PAUSE_AT_STEP=<1-9> pauses every apply at the start of that step (after
 * the step's status write) until the process is killed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InstallationKey, LABELS } from '@ployz/identity';
import { DeployRequest, RollbackRequest } from '@ployz/protocol';
import { Store } from '@ployz/store';
import { isPloyzError, PloyzError, parseManifest } from '@ployz/types';
import type { z } from 'zod';
import type { DaemonContext, DaemonPlugin } from '../daemon.ts';
import type { MachineIdentity } from '../machine-identity.ts';
import { DockerWorkloads } from './docker-workloads.ts';
import { DeployEngine, newDeployId, newInstanceId } from './engine.ts';
import { EventStream } from './event-stream.ts';
import type { DeployEvent } from './events.ts';
import { deployManifestOf, sealedRevisionCodec } from './manifest-adapter.ts';
import { systemClock } from './ports.ts';
import { deployRpcHandlers, RpcMachineAgent } from './rpc-agent.ts';
import { storeDeployPort } from './store-port.ts';

/** The installation key that seals env values at rest: `<state>/installation.key`, 0600. */
export async function loadInstallationKey(stateDir: string): Promise<InstallationKey> {
  const path = join(stateDir, 'installation.key');
  try {
    return InstallationKey.fromText(await readFile(path, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = InstallationKey.generate();
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeFile(path, `${key.toText()}\n`, { mode: 0o600, flag: 'wx' }).catch(
    async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    },
  );
  return InstallationKey.fromText(await readFile(path, 'utf8'));
}

function bridgeDns(subnet: string): string | null {
  const m = /^(\d+\.\d+\.\d+)\.\d+\/\d+$/.exec(subnet);
  return m ? `${m[1]}.2` : null;
}

function input<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PloyzError(
      'API_BAD_REQUEST',
      `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

export function deployPlugin(): DaemonPlugin {
  let engine: DeployEngine | null = null;
  let workloads: DockerWorkloads | null = null;
  let key: InstallationKey | null = null;
  let volumesRoot = '/var/lib/ployz/volumes';
  let store: Store | null = null;

  const ready = (): { engine: DeployEngine; key: InstallationKey } => {
    if (engine === null || key === null) {
      throw new PloyzError(
        'STORE_UNAVAILABLE',
        'the deploy engine is not ready yet (machine not initialised or NATS not connected); see ployzctl status',
      );
    }
    return { engine, key };
  };

  /**
   * The protocol's stream wire: `{ progress: DeployEvent }` lines, then `{ result }` or
   * `{ error }`. The deploy keeps running when the client goes away.
   */
  const stream = (run: (emit: (e: DeployEvent) => void) => Promise<unknown>): AsyncIterable<unknown> => {
    const lines = new EventStream<unknown>();
    run((e) => lines.push({ progress: e }))
      .then((result) => lines.push({ result }))
      .catch((error: unknown) => {
        const body = isPloyzError(error)
          ? error.toJSON()
          : { code: 'INTERNAL' as const, message: String(error) };
        lines.push({ error: body });
      })
      .finally(() => lines.close());
    return lines;
  };

  const parse = (text: string, filename: string | undefined, format: 'toml' | 'json' | null) => {
    const { key: k } = ready();
    const options = {
      ...(filename !== undefined ? { filename } : {}),
      ...(format !== null ? { format } : {}),
    };
    return deployManifestOf(parseManifest(text, options), k, volumesRoot);
  };

  return {
    name: 'deploy',
    register(ctx: DaemonContext) {
      volumesRoot = join(ctx.config.stateDir, 'volumes');
      for (const [command, handler] of Object.entries(
        deployRpcHandlers(() => {
          if (workloads === null)
            throw new PloyzError(
              'NOT_INITIALISED',
              'this machine is not initialised; run: ployzctl machine init',
            );
          return workloads;
        }),
      )) {
        ctx.registerRpc(command, handler);
      }
      ctx.registerRoute('POST', '/v1/deploy/preview', async (body) => {
        const b = input(DeployRequest, body);
        return ready().engine.preview(parse(b.manifest, b.filename ?? undefined, b.format));
      });
      ctx.registerRoute('POST', '/v1/deploy/apply', (body) => {
        const b = input(DeployRequest, body);
        const manifest = parse(b.manifest, b.filename ?? undefined, b.format);
        const { engine: e } = ready();
        return stream((emit) => e.apply(manifest, { actor: b.actor ?? 'ployzctl' }, emit));
      });
      ctx.registerRoute('POST', '/v1/deploy/rollback', (body) => {
        const b = input(RollbackRequest, body);
        const { engine: e } = ready();
        return stream((emit) => e.rollback(b.deploy_id, b.actor ?? 'ployzctl', emit));
      });
      ctx.registerRoute('GET', '/v1/deploys', (_body, query) =>
        ready().engine.list(query.get('namespace') ?? undefined),
      );
      ctx.registerRoute('GET', '/v1/deploy', (_body, query) => {
        const id = query.get('id');
        if (id === null) throw new PloyzError('API_BAD_REQUEST', 'pass ?id=dep-…');
        return ready().engine.show(id);
      });
    },

    async start(ctx: DaemonContext, machine: MachineIdentity) {
      const log = ctx.logger.child({ plugin: 'deploy' });
      const nc = ctx.nats()?.connection;
      if (!nc) throw new PloyzError('STORE_UNAVAILABLE', 'NATS is not connected');
      key = await loadInstallationKey(ctx.config.stateDir);
      store = await Store.fromConnection(nc, {
        installation: machine.installation,
        authority: machine.authority,
      });
      workloads = new DockerWorkloads(
        ctx.docker.docker,
        {
          containerPrefix: ctx.config.containerPrefix,
          bridge: ctx.config.bridgeName,
          dns: bridgeDns(machine.subnet),
          extraLabels: { [LABELS.installation]: machine.installation },
        },
        systemClock,
      );
      const pause = Number(process.env.PLOYZ_TEST_PAUSE_AT_STEP ?? '');
      const next = new DeployEngine({
        store: storeDeployPort(store),
        agent: new RpcMachineAgent(nc, machine.installation, machine.authority),
        codec: sealedRevisionCodec(key, volumesRoot),
        clock: systemClock,
        machineId: machine.machine_id,
        processNonce: `${process.pid}-${randomBytes(4).toString('hex')}`,
        leaseTtlMs: 15_000,
        drainMs: Number(process.env.PLOYZ_DEPLOY_DRAIN_MS ?? '') || 1000,
        pauseAtStep: Number.isInteger(pause) && pause >= 1 && pause <= 9 ? pause : undefined,
        newDeployId: () => newDeployId(),
        newInstanceId,
      });
      const reports = await next.recover();
      for (const r of reports) log.warn({ ...r }, 'recovered an interrupted deploy');
      engine = next;
      log.info({ recovered: reports.length }, 'deploy engine ready');
    },

    async stop() {
      engine = null;
      workloads = null;
    },
  };
}
