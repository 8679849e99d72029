/**
 * The deploy engine as a daemon plugin: RPC commands for the participant side
 * (`deployCommands`: deploy_start / deploy_ready / deploy_stop), the deploy routes of
 * @ployz/protocol's `api` table for the CLI (deployPreview, deployApply and deployRollback
 * streaming deploy events as progress, deployList, deployShow; branchPreview, branchApply,
 * branchPromotePreview and branchPromote), and at every start crash recovery
 * before the first deploy is accepted. An apply keeps running when the client goes away.
 *
 * Test-only: PLOYZ_TEST_PAUSE_AT_STEP=<1-9> pauses every apply at the start of that step (after
 * the step's status write) until the process is killed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InstallationKey, LABELS } from '@ployz/identity';
import { type BranchRequest, type PromoteRequest, volumeCommands, volumeMoveCommands } from '@ployz/protocol';
import type { Store } from '@ployz/store';
import { PloyzError, parseManifest } from '@ployz/types';
import type { DaemonContext, DaemonPlugin } from '../daemon/daemon.ts';
import { networkingAddress } from '../dataplane/component-spec.ts';
import { imageSenderOf } from '../images/plugin.ts';
import type { MachineIdentity } from '../machine/identity.ts';
import { defaultStorage, parseStorageSpec } from '../storage/storage-spec.ts';
import { LocalVolumes } from '../storage/volumes.ts';
import { membersMajorityReachable, networkingNetns } from '../store-promote/peers.ts';
import { moveStorageOf, VolumeMoveService } from '../volume-move/handlers.ts';
import { DockerWorkloads } from '../workloads/docker-workloads.ts';
import { deployRpcHandlers } from '../workloads/rpc-handlers.ts';
import { volumeRpcHandlers } from '../workloads/volume-handlers.ts';
import { deployCommands, RpcMachineAgent } from './adapters/rpc-agent.ts';
import { rpcImageAgent } from './adapters/rpc-images.ts';
import { rpcVolumeAgent } from './adapters/rpc-volumes.ts';
import { storeDeployPort } from './adapters/store-port.ts';
import { DeployEngine, newDeployId, newInstanceId } from './engine.ts';
import type { EmitDeployEvent } from './model/events.ts';
import { deployManifestOf, sealedRevisionCodec } from './model/manifest.ts';
import { systemClock, type VolumeAgent } from './ports.ts';

/** Where the installation key that seals env values at rest lives (0600). */
export function installationKeyPath(stateDir: string): string {
  return join(stateDir, 'installation.key');
}

/** The installation key: read, or created on the installation's first machine. */
export async function loadInstallationKey(stateDir: string): Promise<InstallationKey> {
  const path = installationKeyPath(stateDir);
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

/**
 * How long a deploy's store call is retried while a majority of the store members answers (one
 * member lost mid-deploy: the survivors' election takes seconds on nats-server 2.9).
 */
const STORE_RETRY_WINDOW_MS = 20_000;

export function deployPlugin(): DaemonPlugin {
  let engine: DeployEngine | null = null;
  let workloads: DockerWorkloads | null = null;
  let key: InstallationKey | null = null;
  let volumesRoot = '/var/lib/ployz/volumes';
  let store: Store | null = null;
  let volumes: LocalVolumes | null = null;
  let volumeAgent: VolumeAgent | null = null;
  let self: MachineIdentity | null = null;
  let storageSpec: string | null = null;
  let moves: VolumeMoveService | null = null;
  const identity = (): MachineIdentity => {
    if (self === null)
      throw new PloyzError('NOT_INITIALISED', 'this machine is not initialised; run: ployzctl machine init');
    return self;
  };
  const readyVolumes = (): VolumeAgent => {
    ready();
    if (volumeAgent === null) throw new PloyzError('ENGINE_NOT_READY', 'the deploy engine is not ready yet');
    return volumeAgent;
  };
  const localVolumes = (): LocalVolumes => {
    if (volumes === null)
      throw new PloyzError('NOT_INITIALISED', 'this machine is not initialised; run: ployzctl machine init');
    return volumes;
  };

  const ready = (): { engine: DeployEngine; key: InstallationKey } => {
    if (engine === null || key === null) {
      throw new PloyzError(
        'ENGINE_NOT_READY',
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
        deployRpcHandlers({
          workloads: () => {
            if (workloads === null)
              throw new PloyzError(
                'NOT_INITIALISED',
                'this machine is not initialised; run: ployzctl machine init',
              );
            return workloads;
          },
          docker: () => ctx.docker.docker,
          volumes: localVolumes,
        }),
      );
      ctx.registerCommands(
        volumeCommands,
        volumeRpcHandlers({ volumes: localVolumes, docker: () => ctx.docker.docker }),
      );
      // Volume moves (ADR 0021): the transfer listener on this machine's wg0 address, in the netns
      // of ployz-networking (read again for every slot: a recreated networking has a new one).
      moves = new VolumeMoveService({
        storage: () => moveStorageOf(parseStorageSpec(storageSpec ?? defaultStorage(ctx.config.stateDir))),
        overlayAddress: () => identity().overlay_ip,
        netns: async () => {
          const netns = await networkingNetns(ctx);
          if (netns === null) {
            throw new PloyzError(
              'VOLUME_TRANSFER_FAILED',
              'ployz-networking is not running, so this machine has no overlay address to move volumes over; see ployzctl status',
              { details: { reason: 'networking down' } },
            );
          }
          return netns;
        },
        addressOf: async (machine) => {
          const record = (await storeDeployPort(ctx.store()).listMachines()).find((m) => m.id === machine);
          if (record === undefined)
            throw new PloyzError(
              'NOT_FOUND',
              `no machine ${machine} in this installation; see ployzctl machine ls`,
              {
                details: { machine },
              },
            );
          return record.overlay_ip;
        },
        log: ctx.logger.child({ plugin: 'deploy', part: 'volume-move' }),
      });
      ctx.registerCommands(volumeMoveCommands, moves.handlers());
      ctx.implement('deployPreview', (b) =>
        ready().engine.preview(parse(b.manifest, b.filename ?? undefined, b.format), {
          withoutVolumeRevert: b.without_volume_revert,
        }),
      );
      // Each deploy runs through the metrics, which watch its events (metrics/daemon-metrics.ts).
      ctx.implement('deployApply', (b, { emit }) => {
        const manifest = parse(b.manifest, b.filename ?? undefined, b.format);
        return ctx.metrics.deploy('apply', emit, (watched) =>
          ready().engine.apply(
            manifest,
            {
              actor: b.actor ?? 'ployzctl',
              ...(b.start_concurrency === null ? {} : { startConcurrency: b.start_concurrency }),
              withoutVolumeRevert: b.without_volume_revert,
            },
            watched,
          ),
        );
      });
      ctx.implement('deployRollback', (b, { emit }) =>
        ctx.metrics.deploy('rollback', emit, (watched) =>
          ready().engine.rollback(b.deploy_id, b.actor ?? 'ployzctl', watched, {
            withoutVolumeRevert: b.without_volume_revert,
          }),
        ),
      );
      const branchOf = (b: BranchRequest) => ({
        source: b.source,
        destination: b.destination,
        volumes: b.volumes,
        hostSuffix: b.host_suffix,
        override:
          b.manifest === null
            ? null
            : parseManifest(b.manifest, {
                ...(b.filename !== null ? { filename: b.filename } : {}),
                ...(b.format !== null ? { format: b.format } : {}),
              }),
      });
      const promoteOf = (b: PromoteRequest) => ({
        branch: b.branch,
        source: b.source,
        withData: b.with_data,
      });
      ctx.implement('branchPreview', (b) => ready().engine.branchPreview(branchOf(b)));
      ctx.implement('branchApply', (b, { emit }) =>
        ctx.metrics.deploy('branch', emit, (watched) =>
          ready().engine.branch(
            branchOf(b),
            {
              actor: b.actor ?? 'ployzctl',
              ...(b.start_concurrency === null ? {} : { startConcurrency: b.start_concurrency }),
            },
            watched,
          ),
        ),
      );
      ctx.implement('branchPromotePreview', (b) => ready().engine.promotePreview(promoteOf(b)));
      ctx.implement('branchPromote', (b, { emit }) =>
        ctx.metrics.deploy('promote', emit, (watched) =>
          ready().engine.promote(promoteOf(b), { actor: b.actor ?? 'ployzctl' }, watched),
        ),
      );
      ctx.implement('deployList', (q) => ready().engine.list(q));
      ctx.implement('volumeList', async (q) => ({
        volumes: (await readyVolumes().listRecords(q.namespace)).map((r) => r.value),
      }));
      ctx.implement('volumeShow', async (q) => {
        const agent = readyVolumes();
        const record = (await agent.getRecord(q.namespace, q.name))?.value;
        if (record === undefined) {
          throw new PloyzError('NOT_FOUND', `no volume ${q.namespace}/${q.name}; see ployzctl volume ls`, {
            details: { namespace: q.namespace, name: q.name },
          });
        }
        try {
          const live = await agent.describe(record.machine, record.namespace, record);
          return { record, live, live_error: null };
        } catch (error) {
          return { record, live: null, live_error: `machine ${record.machine}: ${(error as Error).message}` };
        }
      });
      ctx.implement('deployShow', (q) => ready().engine.show(q.id));
      ctx.implement('namespaceList', async () => ({ namespaces: await ready().engine.namespaces() }));
      ctx.implement('namespaceRemove', (b, { emit }) => {
        const remove = (e: EmitDeployEvent) =>
          ready().engine.removeNamespace(
            b.namespace,
            { actor: b.actor ?? 'ployzctl', preview: b.preview, deleteVolumes: b.delete_volumes },
            e,
          );
        return b.preview ? remove(emit) : ctx.metrics.deploy('namespace_remove', emit, remove);
      });
    },

    async start(ctx: DaemonContext, machine: MachineIdentity) {
      const log = ctx.logger.child({ plugin: 'deploy' });
      const nc = ctx.nats()?.connection;
      if (!nc) throw new PloyzError('STORE_UNAVAILABLE', 'NATS is not connected');
      key = await loadInstallationKey(ctx.config.stateDir);
      // The storage recorded at init (a machine initialised before storage was recorded keeps its
      // plain directories); a failed probe is logged and the next volume operation says what is
      // wrong, while deploys without volumes go on.
      const storage = machine.storage ?? defaultStorage(ctx.config.stateDir);
      self = machine;
      storageSpec = storage;
      volumes = LocalVolumes.of(parseStorageSpec(storage), () => ctx.docker.docker);
      await volumes
        .probe()
        .catch((error: unknown) => log.error({ err: String(error), storage }, 'volume storage probe failed'));
      store = ctx.store();
      workloads = new DockerWorkloads(
        ctx.docker.docker,
        {
          containerPrefix: ctx.config.containerPrefix,
          bridge: ctx.config.bridgeName,
          dns: networkingAddress(machine.subnet),
          extraLabels: { [LABELS.installation]: machine.installation },
        },
        systemClock,
      );
      volumeAgent = rpcVolumeAgent(
        nc,
        { installation: machine.installation, authority: machine.authority },
        store,
      );
      const pause = Number(process.env.PLOYZ_TEST_PAUSE_AT_STEP ?? '');
      const next = new DeployEngine({
        store: storeDeployPort(store, {
          windowMs: STORE_RETRY_WINDOW_MS,
          quorumReachable: () => membersMajorityReachable(ctx.config.stateDir, () => networkingNetns(ctx)),
          onRetry: (what, attempt, err) =>
            ctx.logger.warn(
              { what, attempt, err: err instanceof Error ? err.message : String(err) },
              'store write retried: a store member is away, the other two elect a new leader',
            ),
        }),
        agent: new RpcMachineAgent(nc, machine.installation, machine.authority),
        codec: sealedRevisionCodec(key, volumesRoot),
        volumes: volumeAgent,
        images: rpcImageAgent(imageSenderOf(ctx, machine)),
        clock: systemClock,
        containerPrefix: ctx.config.containerPrefix,
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
      for (const r of await next.recoverVolumes()) {
        if (r.outcome === 'failed')
          log.error({ ...r }, 'could not restore a volume an interrupted deploy changed');
        else log.warn({ ...r }, 'settled a volume an interrupted deploy had pending');
      }
      engine = next;
      log.info({ recovered: reports.length }, 'deploy engine ready');
    },

    async routeConflicts() {
      return ready().engine.routeConflicts();
    },

    async stop() {
      await moves?.close();
      self = null;
      engine = null;
      volumes = null;
      volumeAgent = null;
      workloads = null;
    },
  };
}
