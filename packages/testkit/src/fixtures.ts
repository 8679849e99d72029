/**
 * Valid durable records for tests and benchmarks, one builder per record type. Each takes the
 * fields a test cares about as a patch over defaults that pass the record schemas.
 */
import type {
  DeployCommit,
  DeployStatusRecord,
  InstanceRecord,
  LeaseRecord,
  MachineRecord,
  PhaseRecord,
  ReleaseRecord,
  RevisionRecord,
  SealedValue,
  StoredServiceSpec,
  VolumeRecord,
} from '@ployz/types';

export const AT = '2026-11-21T23:00:00.000Z';

export function machine(id = 'm1', patch: Partial<MachineRecord> = {}): MachineRecord {
  return {
    id,
    public_key: `${'A'.repeat(42)}E=`,
    overlay_ip: 'fd00::1',
    subnet: '10.210.1.0/24',
    endpoints: ['127.0.0.1:51820'],
    region: 'local',
    region_role: 'home_data',
    lifecycle: 'active',
    created_at: AT,
    updated_at: AT,
    ...patch,
  };
}

/**
 * A well-formed sealed env value (kid, mac and box in their stored formats; not openable by any
 * key). Real ones come from @ployz/identity `sealSpec`.
 */
export function sealedValue(n = 0): SealedValue {
  const hex = n.toString(16).padStart(16, '0').slice(-16);
  return { kid: '0123456789abcdef', mac: `${hex}${'A'.repeat(27)}`, box: `box${hex}` };
}

/**
 * A stored service spec (env sealed) as ployzd writes it into a revision: the manifest's
 * defaults, one `http` port on 8080, no routes unless patched.
 */
export function serviceSpec(patch: Partial<StoredServiceSpec> = {}): StoredServiceSpec {
  return {
    namespace: 'shop',
    name: 'web',
    image: 'web:1',
    command: null,
    entrypoint: null,
    env: {},
    ports: [{ name: 'http', port: 8080, protocol: 'tcp' }],
    routes: [],
    readiness: null,
    placement: { mode: 'replicated', replicas: 1, regions: [] },
    mounts: [],
    resources: { cpus: null, memory_bytes: null },
    restart: 'unless_stopped',
    stop_grace_ms: 10_000,
    ...patch,
  };
}

/** A revision whose spec, unless given, is `serviceSpec()` for the record's namespace and service. */
export function revision(id = 'rev-0123456789abcdef', patch: Partial<RevisionRecord> = {}): RevisionRecord {
  const namespace = patch.namespace ?? 'shop';
  const service = patch.service ?? 'web';
  return {
    id,
    namespace,
    service,
    spec: serviceSpec({ namespace, name: service }),
    created_at: AT,
    ...patch,
  };
}

export function release(patch: Partial<ReleaseRecord> = {}): ReleaseRecord {
  return {
    namespace: 'shop',
    service: 'web',
    revision: 'rev-0123456789abcdef',
    deploy: 'dep-1',
    slots: [{ slot: 0, machine: 'm1', instance: 'web-0-a' }],
    updated_at: AT,
    ...patch,
  };
}

export function instance(id = 'web-0-a', patch: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id,
    namespace: 'shop',
    service: 'web',
    slot: 0,
    machine: 'm1',
    revision: 'rev-0123456789abcdef',
    deploy: 'dep-1',
    container_id: 'c0ffee',
    ip: '10.210.1.5',
    ip6: null,
    ports: { http: 8080 },
    state: 'running',
    ready: true,
    draining: false,
    error: null,
    created_at: AT,
    updated_at: AT,
    ...patch,
  };
}

export function deployStatus(id = 'dep-1', patch: Partial<DeployStatusRecord> = {}): DeployStatusRecord {
  return {
    deploy_id: id,
    namespace: 'shop',
    state: 'applying',
    manifest_hash: 'h1',
    phases: ['p0'],
    commits: [],
    rollback_of: null,
    actor: 'test',
    step: 4,
    error: null,
    started_at: AT,
    updated_at: AT,
    ...patch,
  };
}

export function phase(deploy = 'dep-1', name = 'p0', patch: Partial<PhaseRecord> = {}): PhaseRecord {
  return {
    deploy_id: deploy,
    phase: name,
    index: 0,
    commit_policy: 'end_of_deploy',
    services: ['web'],
    volumes: [],
    work: [{ kind: 'start', service: 'web', slot: 0, machine: 'm1' }],
    state: 'pending',
    commit_id: null,
    error: null,
    updated_at: AT,
    ...patch,
  };
}

export function volume(name = 'data', patch: Partial<VolumeRecord> = {}): VolumeRecord {
  return {
    namespace: 'shop',
    name,
    volume: name,
    slot: null,
    scope: 'single',
    machine: 'm1',
    driver: 'btrfs',
    dataset: '/var/lib/ployz/btrfs/shop/data',
    quota_bytes: null,
    owner: null,
    mode: null,
    keep_snapshots: 10,
    created_by: 'dep-1',
    status: 'active',
    snapshots: [],
    pending: null,
    updated_at: AT,
    ...patch,
  };
}

export function commit(id = 'dep-1.final', patch: Partial<DeployCommit> = {}): DeployCommit {
  return {
    id,
    deploy_id: 'dep-1',
    namespace: 'shop',
    kind: 'final',
    phase: null,
    manifest_hash: 'h1',
    services: [
      {
        service: 'web',
        revision: 'rev-0123456789abcdef',
        slots: [{ slot: 0, machine: 'm1', instance: 'web-0-a' }],
        source_revision: null,
      },
    ],
    removed_services: [],
    volume_movements: [],
    volumes: [],
    snapshots: [],
    reverted: [],
    rollback_of: null,
    lineage: null,
    actor: 'test',
    created_at: AT,
    ...patch,
  };
}

export function lease(key = 'cp.lock.deploy.shop', patch: Partial<LeaseRecord> = {}): LeaseRecord {
  return {
    key,
    owner: 'test',
    nonce: '0123456789abcdef01234567',
    purpose: 'deploy',
    acquired_at: AT,
    expires_at: '2026-11-21T23:01:00.000Z',
    ...patch,
  };
}
