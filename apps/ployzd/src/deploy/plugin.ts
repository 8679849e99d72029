/**
 * The deploy engine as a daemon plugin: RPC commands for the participant side
 * (`deployCommands`: deploy_start / deploy_ready / deploy_stop), the deploy routes of
 * @ployz/protocol's `api` table for the CLI (deployPreview, deployApply and deployRollback
 * streaming deploy events as progress, deployList, deployShow), and at every start crash recovery
 * before the first deploy is accepted. An apply keeps running when the client goes away.
 *
 * Test-only: PLOYZ_TEST_PAUSE_AT_STEP=<1-9> pauses every apply at the start of that step (after
 * the step's status write) until the process is killed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InstallationKey, LABELS } from '@ployz/identity';
import { Store } from '@ployz/store';
import { PloyzError, parseManifest } from '@ployz/types';
import type { DaemonContext, DaemonPlugin } from '../daemon.ts';
import type { MachineIdentity } from '../machine-identity.ts';
import { DockerWorkloads } from './docker-workloads.ts';
import { DeployEngine, newDeployId, newInstanceId } from './engine.ts';
import { deployManifestOf, sealedRevisionCodec } from './manifest-adapter.ts';
import { systemClock } from './ports.ts';
import { deployCommands, deployRpcHandlers, RpcMachineAgent } from './rpc-agent.ts';
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
      ctx.registerCommands(
        deployCommands,
        deployRpcHandlers(() => {
          if (workloads === null)
            throw new PloyzError(
              'NOT_INITIALISED',
              'this machine is not initialised; run: ployzctl machine init',
            );
          return workloads;
        }),
      );
      ctx.implement('deployPreview', (b) =>
        ready().engine.preview(parse(b.manifest, b.filename ?? undefined, b.format)),
      );
      ctx.implement('deployApply', (b, { emit }) => {
        const manifest = parse(b.manifest, b.filename ?? undefined, b.format);
        return ready().engine.apply(manifest, { actor: b.actor ?? 'ployzctl' }, emit);
      });
      ctx.implement('deployRollback', (b, { emit }) =>
        ready().engine.rollback(b.deploy_id, b.actor ?? 'ployzctl', emit),
      );
      ctx.implement('deployList', (q) => ready().engine.list(q.namespace));
      ctx.implement('deployShow', (q) => ready().engine.show(q.id));
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
