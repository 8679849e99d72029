/**
 * Branch and promote decisions (issue 23; seeds 003/004, docs/adr/0018-branches.md). Pure:
 * committed records in, the manifest to deploy and its lineage out.
 *
 * A **branch** of namespace S into a new namespace B runs S's current (last committed) revisions
 * — each service's spec with its namespace set to B — overridden service by service, and volume
 * declaration by volume declaration, by a manifest of B (`-f`). Hostnames are never copied:
 * without `--host-suffix` a source service's http routes are dropped (a branch without hostnames
 * is fine), with it each hostname gets the suffix as its new leftmost label (`shop.example.com` +
 * `pr-7` → `pr-7.shop.example.com`; a wildcard keeps its `*` first: `*.pr-7.example.com`). tcp
 * routes are dropped (a listen port is the whole installation's). A volume of S is cloned from
 * its snapshot at S's last commit that covered it (`clone`, the default), or starts `empty`; a
 * volume only the manifest declares starts empty. The branch's slots start where S's run.
 *
 * A **promote** of B into S deploys B's current services into S: every service B has replaces
 * S's of that name (a service only S has stays as it is), with S's own routes when S has the
 * service, else B's with the suffix taken off again (hostnames without it are B's own: dropped).
 * S keeps its data, unless `withData`: then each volume of B replaces S's of that name (S's is
 * snapshotted first, so a rollback of S restores it), and one S lacks is cloned from B.
 */
import { formatBytes, type RouteChange, type VolumePlan, volumeNameOf } from '@ployz/protocol';
import {
  type CommitSnapshot,
  type Lineage,
  type LineageService,
  type LineageVolume,
  type Manifest,
  PloyzError,
  type RouteSpec,
  type ServiceSpec,
  type SlotAssignment,
  type VolumeRecord,
  type VolumeSpec,
} from '@ployz/types';
import type { DeployPlan } from './plan.ts';
import type { DeployManifest } from './spec.ts';
import { assertVolumeUnchanged, type CoveredVolume, coveredVolumes } from './volumes.ts';

/** One committed service of a namespace: its release and the spec of its revision (plaintext env). */
export interface CommittedSpec {
  spec: ServiceSpec;
  revision: string;
  /** The deploy that committed this revision (the release's `deploy`). */
  deploy: string;
  slots: SlotAssignment[];
}

export type BranchVolumeMode = 'clone' | 'empty';

export interface BranchInput {
  source: string;
  destination: string;
  /** The source's committed services. */
  services: readonly CommittedSpec[];
  /** The source's volume declarations, as its commits recorded them. */
  volumes: readonly VolumeSpec[];
  /** The source's volume records (their snapshots, oldest first). */
  records: readonly VolumeRecord[];
  /** A parsed manifest of the branch overriding services and volumes; null: the source's as they are. */
  override: Manifest | null;
  /** `--volume name=mode`, unchecked. */
  volumeModes: Readonly<Record<string, string>>;
  hostSuffix: string | null;
}

/** Where one volume of the deploy gets its data before the candidates start. */
export interface VolumeSourcing {
  volume: string;
  mode: 'clone' | 'empty' | 'replace' | 'kept';
  /** The records of the volume in the namespace the data comes from (one per slot for per_slot). */
  from: VolumeRecord[];
  /** Take the snapshot now (promote: the branch's data as it is), not a committed one. */
  snapshotNow: boolean;
}

export interface Decision {
  /** The manifest to deploy, as a parsed manifest of the target namespace. */
  manifest: Manifest;
  /** The lineage without its volumes (those follow from the plan: `dataFor`). */
  lineage: Omit<Lineage, 'volumes'>;
  routes: RouteChange[];
  volumes: VolumeSourcing[];
  /** Where each service's slots start when the target has no release of it yet. */
  placeLike: Record<string, SlotAssignment[]>;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_HOSTNAME = 253;

/** `--host-suffix`: one or more dot-separated DNS labels, lowercased. */
export function checkHostSuffix(suffix: string): string {
  const lowered = suffix.toLowerCase();
  const labels = lowered.split('.');
  if (lowered.length === 0 || lowered.length > 200 || !labels.every((l) => LABEL.test(l))) {
    throw new PloyzError(
      'BRANCH_HOST_SUFFIX_INVALID',
      `--host-suffix ${JSON.stringify(suffix)} must be DNS labels (lowercase letters, digits and -, dot-separated), e.g. pr-7`,
      { details: { host_suffix: suffix } },
    );
  }
  return lowered;
}

/**
 * The branch's hostname for a source hostname: the suffix as the new leftmost label, after the `*`
 * of a wildcard. `shop.example.com` + `pr-7` → `pr-7.shop.example.com`; `*.example.com` →
 * `*.pr-7.example.com`.
 */
export function branchHostname(hostname: string, suffix: string): string {
  const out = hostname.startsWith('*.') ? `*.${suffix}.${hostname.slice(2)}` : `${suffix}.${hostname}`;
  if (out.length > MAX_HOSTNAME) {
    throw new PloyzError(
      'BRANCH_HOST_SUFFIX_INVALID',
      `${hostname} with --host-suffix ${suffix} is ${out.length} characters, over the ${MAX_HOSTNAME} a DNS name may have; use a shorter suffix`,
      { details: { hostname, host_suffix: suffix } },
    );
  }
  return out;
}

/** The source hostname a branch hostname came from, or null when it does not carry the suffix. */
export function unbranchHostname(hostname: string, suffix: string): string | null {
  if (hostname.startsWith(`*.${suffix}.`)) return `*.${hostname.slice(suffix.length + 3)}`;
  if (hostname.startsWith(`${suffix}.`)) return hostname.slice(suffix.length + 1);
  return null;
}

function routeText(r: RouteSpec): string {
  return r.kind === 'http' ? r.hostnames.map((h) => `${h}${r.path}`).join(', ') : `:${r.listen}`;
}

/** A source service's routes in the branch: http hostnames with the suffix, or dropped; tcp dropped. */
function branchRoutes(
  service: string,
  routes: readonly RouteSpec[],
  suffix: string | null,
): { routes: RouteSpec[]; changes: RouteChange[] } {
  const out: RouteSpec[] = [];
  const changes: RouteChange[] = [];
  for (const r of routes) {
    if (r.kind === 'tcp') {
      changes.push({
        service,
        kind: 'tcp',
        from: routeText(r),
        to: null,
        detail: 'dropped: a tcp listen port belongs to the whole installation (the source keeps it)',
      });
      continue;
    }
    if (suffix === null) {
      changes.push({
        service,
        kind: 'http',
        from: routeText(r),
        to: null,
        detail: 'dropped: hostnames are not copied (give the branch its own with --host-suffix or -f)',
      });
      continue;
    }
    const next = { ...r, hostnames: r.hostnames.map((h) => branchHostname(h, suffix)) };
    out.push(next);
    changes.push({ service, kind: 'http', from: routeText(r), to: routeText(next), detail: '--host-suffix' });
  }
  return { routes: out, changes };
}

/** Two routes of one namespace on the same hostname + path (or tcp port) is MANIFEST_INVALID. */
function assertRoutesDistinct(services: readonly ServiceSpec[]): void {
  const seen = new Map<string, string>();
  for (const s of services) {
    for (const r of s.routes) {
      const keys = r.kind === 'http' ? r.hostnames.map((h) => `http ${h}${r.path}`) : [`tcp :${r.listen}`];
      for (const key of keys) {
        const other = seen.get(key);
        if (other !== undefined && other !== s.name) {
          throw new PloyzError(
            'MANIFEST_INVALID',
            `services ${other} and ${s.name} both claim ${key.slice(key.indexOf(' ') + 1)}: give one of them other hostnames in the manifest`,
            { details: { route: key, services: [other, s.name] } },
          );
        }
        seen.set(key, s.name);
      }
    }
  }
}

const mountsOf = (spec: ServiceSpec) => spec.mounts.flatMap((m) => (m.kind === 'volume' ? [m.volume] : []));

function newestDeploy(services: readonly CommittedSpec[]): string {
  const ids = services.map((s) => s.deploy).sort();
  const newest = ids.at(-1);
  if (newest === undefined) throw new Error('branch: no committed service');
  return newest;
}

/** The newest snapshot of a record, as a commit recorded it, or null (dir storage, never committed). */
export function lastSnapshot(record: VolumeRecord): CommitSnapshot | null {
  const s = record.snapshots.at(-1);
  if (s === undefined) return null;
  return {
    volume: record.volume,
    slot: record.slot,
    machine: record.machine,
    driver: record.driver,
    dataset: record.dataset,
    id: s.id,
    label: s.deploy_id,
    at: s.at,
    bytes: s.bytes,
  };
}

/** BRANCH_SOURCE_UNKNOWN unless the namespace has a committed service. */
function assertCommitted(namespace: string, services: readonly CommittedSpec[], what: string): void {
  if (services.length > 0) return;
  throw new PloyzError(
    'BRANCH_SOURCE_UNKNOWN',
    `namespace ${namespace} has no committed release to ${what}; see ployzctl namespace ls`,
    { details: { namespace } },
  );
}

/** Step 1 of a branch: the branch's manifest and lineage from the source's committed state. */
export function planBranch(input: BranchInput): Decision {
  const { source, destination } = input;
  assertCommitted(source, input.services, 'branch');
  if (input.override !== null && input.override.namespace !== destination) {
    throw new PloyzError(
      'BRANCH_MANIFEST_NAMESPACE',
      `the branch manifest is of namespace ${input.override.namespace}, not of the branch ${destination}: set namespace = "${destination}" in it`,
      { details: { namespace: input.override.namespace, destination } },
    );
  }
  const suffix = input.hostSuffix === null ? null : checkHostSuffix(input.hostSuffix);
  const overrides = new Map((input.override?.services ?? []).map((s) => [s.name, s]));
  const routes: RouteChange[] = [];
  const services: ServiceSpec[] = [];
  const lineage: LineageService[] = [];
  const placeLike: Record<string, SlotAssignment[]> = {};
  const bySource = new Map(input.services.map((c) => [c.spec.name, c]));
  for (const c of [...input.services].sort((a, b) => (a.spec.name < b.spec.name ? -1 : 1))) {
    const name = c.spec.name;
    placeLike[name] = c.slots;
    const own = overrides.get(name);
    if (own !== undefined) {
      services.push(own);
      lineage.push({ service: name, from_revision: c.revision, from_deploy: c.deploy, overridden: true });
      continue;
    }
    const rewritten = branchRoutes(name, c.spec.routes, suffix);
    routes.push(...rewritten.changes);
    services.push({ ...c.spec, namespace: destination, routes: rewritten.routes });
    lineage.push({ service: name, from_revision: c.revision, from_deploy: c.deploy, overridden: false });
  }
  for (const own of input.override?.services ?? []) {
    if (bySource.has(own.name)) continue;
    services.push(own);
    lineage.push({ service: own.name, from_revision: null, from_deploy: null, overridden: true });
  }
  assertRoutesDistinct(services);

  // Volume declarations: the source's that the branch mounts, the manifest's over them.
  const mounted = new Set(services.flatMap(mountsOf));
  const declared = new Map<string, VolumeSpec>();
  for (const v of input.volumes) if (mounted.has(v.name)) declared.set(v.name, v);
  for (const v of input.override?.volumes ?? []) declared.set(v.name, v);
  const volumes = [...declared.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const [name, mode] of Object.entries(input.volumeModes)) {
    if (!declared.has(name) || (mode !== 'clone' && mode !== 'empty')) {
      throw new PloyzError(
        'BRANCH_VOLUME_UNKNOWN',
        declared.has(name)
          ? `--volume ${name}=${mode}: the mode is clone or empty`
          : `--volume ${name}=${mode}: the branch has no volume ${name} (its volumes: ${volumes.map((v) => v.name).join(', ') || 'none'})`,
        { details: { volume: name, mode, volumes: volumes.map((v) => v.name) } },
      );
    }
  }
  const sourcing: VolumeSourcing[] = volumes.map((v) => {
    const from = input.records.filter((r) => r.volume === v.name);
    const fromSource = input.volumes.some((s) => s.name === v.name) || from.length > 0;
    const asked = input.volumeModes[v.name];
    const mode: 'clone' | 'empty' =
      asked === 'empty' || (asked === undefined && !fromSource) ? 'empty' : 'clone';
    if (mode === 'clone' && !from.some((r) => lastSnapshot(r) !== null)) {
      throw new PloyzError(
        'BRANCH_NO_SNAPSHOT',
        from.length === 0
          ? `volume ${v.name} has no data in ${source} to clone (no commit covered it); branch it with --volume ${v.name}=empty`
          : `volume ${source}/${v.name} has no snapshot from a commit (its storage is ${from[0]?.driver}: no snapshots); branch it with --volume ${v.name}=empty`,
        { details: { namespace: source, volume: v.name } },
      );
    }
    return { volume: v.name, mode, from, snapshotNow: false };
  });

  const manifest: Manifest = {
    namespace: destination,
    services,
    volumes,
    phases: input.override?.phases ?? [],
  };
  return {
    manifest,
    lineage: {
      kind: 'branch',
      from_namespace: source,
      from_deploy: newestDeploy(input.services),
      host_suffix: suffix,
      services: lineage,
    },
    routes,
    volumes: sourcing,
    placeLike,
  };
}

export interface PromoteInput {
  branch: string;
  source: string;
  /** The branch's committed services. */
  branchServices: readonly CommittedSpec[];
  branchVolumes: readonly VolumeSpec[];
  branchRecords: readonly VolumeRecord[];
  /** The lineage the branch's commits recorded (the newest), or null. */
  branchLineage: Lineage | null;
  /** The source's committed services now (they keep their routes). */
  sourceServices: readonly CommittedSpec[];
  sourceVolumes: readonly VolumeSpec[];
  sourceRecords: readonly VolumeRecord[];
  withData: boolean;
}

/** Step 1 of a promote: the source's manifest with the branch's services in it. */
export function planPromote(input: PromoteInput): Decision {
  const { branch, source } = input;
  assertCommitted(branch, input.branchServices, 'promote');
  const lineageOfBranch = input.branchLineage;
  if (lineageOfBranch?.kind !== 'branch' || lineageOfBranch.from_namespace !== source) {
    throw new PloyzError(
      'PROMOTE_NOT_A_BRANCH',
      lineageOfBranch?.kind === 'branch'
        ? `namespace ${branch} is a branch of ${lineageOfBranch.from_namespace}, not of ${source}: promote it with ployzctl branch promote ${branch} ${lineageOfBranch.from_namespace}`
        : `namespace ${branch} was not made by ployzctl branch apply, so there is nothing to promote into ${source}`,
      { details: { namespace: branch, source, branched_from: lineageOfBranch?.from_namespace ?? null } },
    );
  }
  const suffix = lineageOfBranch.host_suffix;
  const sourceByName = new Map(input.sourceServices.map((c) => [c.spec.name, c]));
  const branchByName = new Map(input.branchServices.map((c) => [c.spec.name, c]));
  const routes: RouteChange[] = [];
  const services: ServiceSpec[] = [];
  const lineage: LineageService[] = [];
  for (const c of [...input.branchServices].sort((a, b) => (a.spec.name < b.spec.name ? -1 : 1))) {
    const name = c.spec.name;
    const theirs = sourceByName.get(name);
    let kept: RouteSpec[];
    if (theirs !== undefined) {
      kept = theirs.spec.routes;
      for (const r of kept)
        routes.push({
          service: name,
          kind: r.kind,
          from: routeText(r),
          to: routeText(r),
          detail: `${source}'s own route, kept`,
        });
    } else {
      kept = [];
      for (const r of c.spec.routes) {
        if (r.kind === 'tcp') {
          routes.push({
            service: name,
            kind: 'tcp',
            from: routeText(r),
            to: null,
            detail: `dropped: ${branch} holds this listen port; declare one for ${source} in a manifest`,
          });
          continue;
        }
        const hostnames =
          suffix === null
            ? []
            : r.hostnames.flatMap((h) => {
                const back = unbranchHostname(h, suffix);
                return back === null ? [] : [back];
              });
        if (hostnames.length === 0) {
          routes.push({
            service: name,
            kind: 'http',
            from: routeText(r),
            to: null,
            detail: `dropped: the branch's own hostnames stay ${branch}'s`,
          });
          continue;
        }
        const next = { ...r, hostnames };
        kept.push(next);
        routes.push({
          service: name,
          kind: 'http',
          from: routeText(r),
          to: routeText(next),
          detail: `--host-suffix ${suffix} taken off`,
        });
      }
    }
    services.push({ ...c.spec, namespace: source, routes: kept });
    lineage.push({ service: name, from_revision: c.revision, from_deploy: c.deploy, overridden: false });
  }
  // A service only the source has stays as it is.
  for (const c of input.sourceServices) if (!branchByName.has(c.spec.name)) services.push(c.spec);
  assertRoutesDistinct(services);

  const mounted = new Set(services.flatMap(mountsOf));
  const declared = new Map<string, VolumeSpec>();
  for (const v of input.sourceVolumes) if (mounted.has(v.name)) declared.set(v.name, v);
  const branchMounted = new Set(services.filter((s) => branchByName.has(s.name)).flatMap(mountsOf));
  for (const v of input.branchVolumes) if (branchMounted.has(v.name)) declared.set(v.name, v);
  const volumes = [...declared.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  const sourcing: VolumeSourcing[] = volumes
    .filter((v) => branchMounted.has(v.name))
    .map((v) => {
      const from = input.branchRecords.filter((r) => r.volume === v.name);
      const there = input.sourceRecords.some((r) => r.volume === v.name);
      if (!input.withData || from.length === 0) {
        return { volume: v.name, mode: there ? 'kept' : 'empty', from: [], snapshotNow: false };
      }
      if (from.some((r) => r.driver === 'dir')) {
        throw new PloyzError(
          'BRANCH_NO_SNAPSHOT',
          `volume ${branch}/${v.name} is on dir storage (no snapshots), so its data cannot be promoted; promote without --with-data`,
          { details: { namespace: branch, volume: v.name } },
        );
      }
      return { volume: v.name, mode: there ? 'replace' : 'clone', from, snapshotNow: true };
    });

  return {
    manifest: { namespace: source, services, volumes, phases: [] },
    lineage: {
      kind: 'promote',
      from_namespace: branch,
      from_deploy: newestDeploy(input.branchServices),
      host_suffix: suffix,
      services: lineage,
    },
    routes,
    volumes: sourcing,
    placeLike: {},
  };
}

/** One volume (per slot) whose data comes from the other namespace before the candidates start. */
export interface PlannedData {
  kind: 'clone' | 'replace';
  target: CoveredVolume;
  /** The record of the volume the data comes from. */
  from: VolumeRecord;
  /** The committed snapshot to use; null: snapshot `from` now (promote). */
  snapshot: CommitSnapshot | null;
}

/**
 * The per-slot data work of a planned deploy, and the lineage's volume lines: for each volume the
 * plan covers, the source record of its slot (BRANCH_NO_SNAPSHOT when a cloned slot has none) on
 * the slot's machine (BRANCH_VOLUME_ELSEWHERE otherwise: a clone is made where the data is).
 */
export function dataFor(
  manifest: DeployManifest,
  plan: DeployPlan,
  sourcing: readonly VolumeSourcing[],
  fromNamespace: string,
): { work: PlannedData[]; volumes: LineageVolume[] } {
  const covered = coveredVolumes(
    manifest,
    plan,
    plan.services.filter((s) => s.revision !== null).map((s) => s.service),
  );
  const work: PlannedData[] = [];
  const volumes: LineageVolume[] = [];
  for (const target of covered) {
    const how = sourcing.find((s) => s.volume === target.volume);
    if (how === undefined) continue;
    if (how.mode === 'empty' || how.mode === 'kept') {
      volumes.push({
        volume: target.volume,
        slot: target.slot,
        data: how.mode,
        snapshot: null,
        previous: null,
      });
      continue;
    }
    const from = how.from.find((r) => r.slot === target.slot);
    const snapshot = from === undefined || how.snapshotNow ? null : lastSnapshot(from);
    if (from === undefined || (!how.snapshotNow && snapshot === null)) {
      throw new PloyzError(
        'BRANCH_NO_SNAPSHOT',
        `volume ${target.name} has no snapshot in ${fromNamespace} to clone${target.slot !== null ? ` (${fromNamespace} has no slot ${target.slot} of it)` : ''}; use --volume ${target.volume}=empty`,
        { details: { namespace: fromNamespace, volume: target.name } },
      );
    }
    if (from.machine !== target.machine) {
      throw new PloyzError(
        'BRANCH_VOLUME_ELSEWHERE',
        `volume ${fromNamespace}/${from.name} is on machine ${from.machine}, but its slot is placed on ${target.machine}; a clone is made where the data is (volume moves are not done yet)`,
        { details: { volume: target.name, machine: target.machine, data_machine: from.machine } },
      );
    }
    // A clone keeps the source's files: its owner and mode cannot change in the branch either.
    assertVolumeUnchanged(target.spec, from);
    work.push({ kind: how.mode, target, from, snapshot });
    volumes.push({
      volume: target.volume,
      slot: target.slot,
      data: how.mode === 'clone' ? 'clone' : 'replaced',
      snapshot,
      previous: null,
    });
  }
  return { work, volumes };
}

/**
 * The plan's volume lines for the data work: `clone`, `empty`, `replace` (each volume is also
 * snapshotted at the commit, as in every deploy).
 */
export function dataPlanLines(
  volumes: readonly VolumePlan[],
  work: readonly PlannedData[],
  lineage: Lineage,
): VolumePlan[] {
  return volumes.map((v) => {
    const w = work.find((x) => x.target.name === v.volume);
    if (w !== undefined) {
      const from = `${lineage.from_namespace}/${w.from.name}`;
      if (w.kind === 'clone') {
        const at =
          w.snapshot !== null
            ? `its snapshot at commit of ${w.snapshot.label} (${w.snapshot.at}, ${formatBytes(w.snapshot.bytes)} referenced)`
            : 'a snapshot taken now (its data as it is)';
        return { ...v, action: 'clone' as const, detail: `copy-on-write clone of ${from} at ${at}` };
      }
      return {
        ...v,
        action: 'replace' as const,
        detail: `its data is kept as a snapshot (<deploy>-pre), then replaced by ${from} as it is now; a rollback to an earlier deploy restores that deploy's data`,
      };
    }
    const line = lineage.volumes.find((x) => volumeNameOf(x.volume, x.slot) === v.volume);
    if (line?.data === 'empty') {
      return { ...v, action: 'empty' as const, detail: `a new, empty volume (not cloned); ${v.detail}` };
    }
    if (line?.data === 'kept') return { ...v, detail: `keeps its own data; ${v.detail}` };
    return v;
  });
}
