/**
 * The operator views as a daemon plugin: the `ps` and `logs` routes and the `exec` tunnel of the
 * local API, and the machine commands other machines' ployzd send for instances held here
 * (`logs_read`, `exec_open`, `exec_io`, @ployz/protocol's `opsCommands`). Reads go to the store;
 * an instance is read here when it is on this machine, over RPC when it is elsewhere.
 *
 * Test-only: PLOYZ_TEST_OPS_VIA_RPC=1 sends even this machine's instances through the RPC path
 * (to itself over NATS), so an e2e on one machine runs the code a remote instance takes.
 */
import { type ExecOpenBody, type LogsQuery, type OpsCommands, opsCommands, RpcClient } from '@ployz/protocol';
import type { Store } from '@ployz/store';
import { type InstanceRecord, PloyzError } from '@ployz/types';
import type { DaemonContext, DaemonPlugin } from '../daemon/daemon.ts';
import type { MachineIdentity } from '../machine/identity.ts';
import { systemClock } from '../workloads/clock.ts';
import { onlyThisMachine } from '../workloads/rpc-handlers.ts';
import { execTarget, pumpExec, remoteExec } from './exec.ts';
import { ExecSessions, readLogs, startExec } from './instance-access.ts';
import { type LogReader, streamLogs } from './logs.ts';
import { psView } from './ps.ts';

/** SERVICE_UNKNOWN (or NAMESPACE_UNKNOWN) unless the store knows the service: a release or an instance. */
export async function serviceInstances(
  store: Store,
  namespace: string,
  service: string,
): Promise<{ instances: InstanceRecord[]; release: Awaited<ReturnType<Store['releases']['get']>> }> {
  const [release, all] = await Promise.all([store.releases.get(namespace, service), store.instances.list()]);
  const inNamespace = all.map((v) => v.value).filter((i) => i.namespace === namespace);
  const instances = inNamespace.filter((i) => i.service === service);
  if (release === null && instances.length === 0) {
    const releases = (await store.releases.list())
      .map((r) => r.value)
      .filter((r) => r.namespace === namespace);
    if (releases.length === 0 && inNamespace.length === 0) {
      throw new PloyzError('NAMESPACE_UNKNOWN', `no namespace ${namespace}; see ployzctl namespace ls`, {
        details: { namespace },
      });
    }
    const known = [...new Set(releases.map((r) => r.service))].sort();
    throw new PloyzError(
      'SERVICE_UNKNOWN',
      `namespace ${namespace} has no service ${service}; it has: ${known.join(', ') || 'none'}`,
      { details: { namespace, service, known } },
    );
  }
  return { instances, release };
}

export function opsPlugin(): DaemonPlugin {
  let store: Store | null = null;
  let machine: MachineIdentity | null = null;
  let client: RpcClient<OpsCommands> | null = null;
  const sessions = new ExecSessions();
  const viaRpc = process.env.PLOYZ_TEST_OPS_VIA_RPC === '1';
  const isLocal = (instanceMachine: string, self: MachineIdentity) =>
    instanceMachine === self.machine_id && !viaRpc;

  const ready = () => {
    if (store === null || machine === null || client === null)
      throw new PloyzError(
        'ENGINE_NOT_READY',
        'ployzd is not connected to its store yet (machine not initialised or NATS not connected); see ployzctl status',
      );
    return { store, machine, client };
  };

  return {
    name: 'ops',
    register(ctx: DaemonContext) {
      const docker = () => ctx.docker.docker;
      const prefix = ctx.config.containerPrefix;

      ctx.registerCommands(opsCommands, {
        logs_read: (body, rpc) => {
          onlyThisMachine(body.machine, rpc);
          return readLogs(docker(), prefix, body);
        },
        exec_open: async (body, rpc) => {
          onlyThisMachine(body.machine, rpc);
          return { session: await sessions.open(docker(), prefix, body) };
        },
        exec_io: (body, rpc) => {
          onlyThisMachine(body.machine, rpc);
          return sessions.io(body);
        },
      });

      ctx.implement('ps', async (q) => {
        const { store } = ready();
        const [releases, instances, machines] = await Promise.all([
          store.releases.list(),
          store.instances.list(),
          store.machines.list(),
        ]);
        return psView({
          releases: releases.map((v) => v.value),
          instances: instances.map((v) => v.value),
          machines: machines.map((v) => v.value),
          at: new Date().toISOString(),
          namespace: q.namespace,
        });
      });

      ctx.implement('logs', async (q: LogsQuery, { emit, signal }) => {
        const { store, machine, client } = ready();
        await serviceInstances(store, q.namespace, q.service);
        const reader: LogReader = {
          read: (i, request) => {
            const body = {
              machine: i.machine,
              namespace: i.namespace,
              service: i.service,
              instance: i.id,
              ...request,
            };
            return isLocal(i.machine, machine)
              ? readLogs(docker(), prefix, body)
              : client.call(i.machine, 'logs_read', body, { timeoutMs: 10_000 });
          },
        };
        return streamLogs(q, {
          instances: async () => (await serviceInstances(store, q.namespace, q.service)).instances,
          reader,
          emit,
          signal,
          clock: systemClock,
          pollMs: 500,
        });
      });

      ctx.implementTunnel('exec', async (q, { accept }) => {
        const { store, machine, client } = ready();
        const { instances, release } = await serviceInstances(store, q.namespace, q.service);
        const target = execTarget(q, instances, release?.value);
        const body: ExecOpenBody = {
          machine: target.machine,
          namespace: target.namespace,
          service: target.service,
          instance: target.id,
          command: q.command,
          tty: q.tty,
          stdin: q.stdin,
          size: q.size,
        };
        const proc = isLocal(target.machine, machine)
          ? await startExec(docker(), prefix, body)
          : await remoteExec(client, body);
        await pumpExec(accept(), proc);
      });
    },

    async start(ctx: DaemonContext, identity: MachineIdentity) {
      const nc = ctx.nats()?.connection;
      if (!nc) throw new PloyzError('STORE_UNAVAILABLE', 'NATS is not connected');
      store = ctx.store();
      machine = identity;
      client = new RpcClient({
        nc,
        scope: { installation: identity.installation, authority: identity.authority },
        commands: opsCommands,
        caller: identity.machine_id,
      });
    },

    async stop() {
      store = null;
      machine = null;
      client = null;
    },
  };
}
