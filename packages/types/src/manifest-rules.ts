/**
 * Cross-field rules: the checks that need more than one field or more than one item. They run
 * over every item that passed its own schema, so one bad service does not hide problems in
 * the others. Pure functions of the parsed input.
 */
import { registryOf } from './image-ref.ts';
import type { PhaseInput, ServiceInput, VolumeInput } from './manifest-input.ts';
import type { ManifestIssueCode, PathSegment } from './manifest-issues.ts';
import { DEFAULT_PHASE_ID } from './manifest-spec.ts';

export interface RawIssue {
  code: ManifestIssueCode;
  path: PathSegment[];
  message: string;
}

export interface Indexed<T> {
  index: number;
  value: T;
}

export interface CheckedInput {
  namespace: string;
  services: Indexed<ServiceInput>[];
  volumes: Indexed<VolumeInput>[];
  phases: Indexed<PhaseInput>[];
  /**
   * Names declared by every item, including items that failed their own schema, so a reference
   * to a broken item is not reported a second time as unknown.
   */
  declared?: { services: ReadonlySet<string>; volumes: ReadonlySet<string>; phases: ReadonlySet<string> };
}

/** TCP ports the edge (gateway HTTP/HTTPS, DNS) binds on every machine. */
export const RESERVED_LISTEN_PORTS: readonly number[] = [53, 80, 443];

export type PortResolution =
  | { ok: true; name: string }
  | { ok: false; code: ManifestIssueCode; message: string };

/** Resolves an optional port reference against the service's declared ports. */
export function resolvePortRef(
  ref: string | undefined,
  ports: Record<string, unknown> | undefined,
): PortResolution {
  const names = Object.keys(ports ?? {});
  if (ref === undefined) {
    const only = names.length === 1 ? names[0] : undefined;
    if (only !== undefined) return { ok: true, name: only };
    return {
      ok: false,
      code: 'PORT_REF_REQUIRED',
      message:
        names.length === 0
          ? 'the service declares no ports; add `ports = { http = 8080 }` and name it here with `port`'
          : `the service declares several ports (${names.join(', ')}); say which with \`port\``,
    };
  }
  if (Object.hasOwn(ports ?? {}, ref)) return { ok: true, name: ref };
  return {
    ok: false,
    code: 'PORT_REF_UNKNOWN',
    message:
      names.length === 0
        ? `port "${ref}" is not declared; the service declares no ports`
        : `port "${ref}" is not declared; declared ports: ${names.join(', ')}`,
  };
}

function portProtocol(service: ServiceInput, name: string): 'tcp' | 'udp' {
  return service.ports?.[name]?.protocol ?? 'tcp';
}

/** Normalises a route path: no trailing slash except the root. */
export function normaliseRoutePath(path: string | undefined): string {
  if (path === undefined || path === '/') return '/';
  const trimmed = path.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

export function checkManifestRules(input: CheckedInput): RawIssue[] {
  const issues: RawIssue[] = [];
  const add = (code: ManifestIssueCode, path: PathSegment[], message: string) =>
    issues.push({ code, path, message });

  // Unique names.
  const uniqueNames = <T>(
    items: Indexed<T>[],
    list: string,
    key: (v: T) => string,
    field: string,
    code: ManifestIssueCode,
    what: string,
  ) => {
    const seen = new Map<string, number>();
    for (const { index, value } of items) {
      const name = key(value);
      const first = seen.get(name);
      if (first !== undefined) {
        add(code, [list, index, field], `${what} "${name}" is already declared at ${list}[${first}]`);
      } else seen.set(name, index);
    }
  };
  uniqueNames(input.services, 'services', (s) => s.name, 'name', 'SERVICE_NAME_DUPLICATE', 'service');
  uniqueNames(input.volumes, 'volumes', (v) => v.name, 'name', 'VOLUME_NAME_DUPLICATE', 'volume');
  uniqueNames(input.phases, 'phases', (p) => p.id, 'id', 'PHASE_ID_DUPLICATE', 'phase');

  const volumes = new Map(input.volumes.map(({ value }) => [value.name, value]));
  const httpClaims = new Map<string, string>();
  const tcpClaims = new Map<number, string>();
  const singleVolumeUsers = new Map<string, string>();

  for (const { index: si, value: service } of input.services) {
    const base: PathSegment[] = ['services', si];

    // Routes: port references, protocol, duplicates across the namespace.
    for (const [ri, route] of (service.routes ?? []).entries()) {
      const kind = route.http !== undefined ? 'http' : 'tcp';
      const body = route.http ?? route.tcp;
      if (body === undefined) continue;
      const resolved = resolvePortRef(body.port, service.ports);
      const routePath = [...base, 'routes', ri, kind];
      if (!resolved.ok) {
        add(resolved.code, body.port === undefined ? routePath : [...routePath, 'port'], resolved.message);
      } else if (portProtocol(service, resolved.name) === 'udp') {
        add(
          'PORT_PROTOCOL_MISMATCH',
          [...routePath, 'port'],
          `port "${resolved.name}" is udp; ${kind} routes need a tcp port`,
        );
      }
      if (route.http !== undefined) {
        const path = normaliseRoutePath(route.http.path);
        for (const [hi, host] of route.http.hostnames.entries()) {
          const claim = `${host.toLowerCase()} ${path}`;
          const where = `services[${si}].routes[${ri}].http.hostnames[${hi}]`;
          if (route.http.tls === 'auto' && host.startsWith('*.'))
            add(
              'TLS_AUTO_WILDCARD',
              [...routePath, 'hostnames', hi],
              `${host} is a wildcard: ACME HTTP-01 cannot issue it; import its certificate instead`,
            );
          const prior = httpClaims.get(claim);
          if (prior !== undefined) {
            add(
              'ROUTE_DUPLICATE',
              [...routePath, 'hostnames', hi],
              `${host.toLowerCase()} with path ${path} is already routed by ${prior}`,
            );
          } else httpClaims.set(claim, where);
        }
      } else if (route.tcp !== undefined) {
        const listen = route.tcp.listen;
        const prior = tcpClaims.get(listen);
        if (RESERVED_LISTEN_PORTS.includes(listen)) {
          add(
            'ROUTE_PORT_RESERVED',
            [...routePath, 'listen'],
            `port ${listen} is used by the Ployz gateway or DNS; listen on another port`,
          );
        } else if (prior !== undefined) {
          add(
            'ROUTE_DUPLICATE',
            [...routePath, 'listen'],
            `tcp port ${listen} is already routed by ${prior}`,
          );
        } else tcpClaims.set(listen, `services[${si}].routes[${ri}].tcp.listen`);
      }
    }

    // A pull policy needs a registry to pull from.
    if (service.pull_policy !== undefined && registryOf(service.image) === null) {
      add(
        'PULL_POLICY_NO_REGISTRY',
        [...base, 'pull_policy'],
        `${service.image} names no registry host, so it is never pulled (it is this machine's own image or sent over the mesh); ` +
          'name the registry in the image (e.g. "registry.example.com/team/app:1.2") or remove `pull_policy`',
      );
    }

    // Readiness port reference.
    const readiness = service.readiness;
    const check = readiness?.http ?? readiness?.tcp;
    if (check !== undefined) {
      const kind = readiness?.http !== undefined ? 'http' : 'tcp';
      const resolved = resolvePortRef(check.port, service.ports);
      const checkPath = [...base, 'readiness', kind];
      if (!resolved.ok) {
        add(resolved.code, check.port === undefined ? checkPath : [...checkPath, 'port'], resolved.message);
      } else if (portProtocol(service, resolved.name) === 'udp') {
        add(
          'PORT_PROTOCOL_MISMATCH',
          [...checkPath, 'port'],
          `port "${resolved.name}" is udp; ${kind} checks need a tcp port`,
        );
      }
    }

    // Mounts: volume references, scope, duplicate targets.
    const targets = new Map<string, number>();
    const multi = service.placement?.mode === 'global' || (service.placement?.replicas ?? 1) > 1;
    for (const [mi, mount] of (service.mounts ?? []).entries()) {
      const mountPath = [...base, 'mounts', mi];
      const target = mount.target.replace(/\/+$/, '');
      const firstTarget = targets.get(target);
      if (firstTarget !== undefined) {
        add(
          'MOUNT_TARGET_DUPLICATE',
          [...mountPath, 'target'],
          `${target} is already mounted by services[${si}].mounts[${firstTarget}]`,
        );
      } else targets.set(target, mi);
      if (mount.volume === undefined) continue;
      const volume = volumes.get(mount.volume);
      if (volume === undefined) {
        if (input.declared?.volumes.has(mount.volume)) continue;
        add(
          'VOLUME_REF_UNKNOWN',
          [...mountPath, 'volume'],
          `volume "${mount.volume}" is not declared; add it under [[volumes]]`,
        );
        continue;
      }
      if ((volume.scope ?? 'single') !== 'single') continue;
      if (multi) {
        add(
          'VOLUME_SCOPE_CONFLICT',
          [...mountPath, 'volume'],
          `volume "${mount.volume}" has scope "single" (one writer) but service "${service.name}" runs several ` +
            'instances; use scope = "per_slot" or a single replica',
        );
        continue;
      }
      const otherUser = singleVolumeUsers.get(mount.volume);
      if (otherUser !== undefined && otherUser !== service.name) {
        add(
          'VOLUME_SCOPE_CONFLICT',
          [...mountPath, 'volume'],
          `volume "${mount.volume}" has scope "single" and is already mounted by service "${otherUser}"`,
        );
      } else singleVolumeUsers.set(mount.volume, service.name);
    }
  }

  checkPhases(input, add);
  return issues;
}

function checkPhases(
  input: CheckedInput,
  add: (code: ManifestIssueCode, path: PathSegment[], message: string) => void,
): void {
  const serviceNames = new Set([
    ...input.services.map(({ value }) => value.name),
    ...(input.declared?.services ?? []),
  ]);
  const volumeNames = new Set([
    ...input.volumes.map(({ value }) => value.name),
    ...(input.declared?.volumes ?? []),
  ]);
  const phaseIds = new Set([...input.phases.map(({ value }) => value.id), ...(input.declared?.phases ?? [])]);
  const owner = new Map<string, string>();

  for (const { index: pi, value: phase } of input.phases) {
    if (phase.id === DEFAULT_PHASE_ID) {
      add(
        'PHASE_ID_RESERVED',
        ['phases', pi, 'id'],
        `"${DEFAULT_PHASE_ID}" is the implicit phase for unlisted services and volumes; choose another id`,
      );
    }
    const items: ['services' | 'volumes', Set<string>, ManifestIssueCode, string][] = [
      ['services', serviceNames, 'SERVICE_REF_UNKNOWN', 'service'],
      ['volumes', volumeNames, 'VOLUME_REF_UNKNOWN', 'volume'],
    ];
    for (const [field, known, unknownCode, what] of items) {
      for (const [i, name] of (phase[field] ?? []).entries()) {
        if (!known.has(name)) {
          add(unknownCode, ['phases', pi, field, i], `${what} "${name}" is not declared in this manifest`);
          continue;
        }
        const key = `${what}:${name}`;
        const prior = owner.get(key);
        if (prior !== undefined) {
          add(
            'PHASE_ITEM_DUPLICATE',
            ['phases', pi, field, i],
            `${what} "${name}" is already in phase "${prior}"; list it in one phase only`,
          );
        } else owner.set(key, phase.id);
      }
    }
    for (const [i, dep] of (phase.after ?? []).entries()) {
      if (!phaseIds.has(dep)) {
        add('PHASE_REF_UNKNOWN', ['phases', pi, 'after', i], `phase "${dep}" is not declared`);
      }
    }
  }

  for (const cycle of findPhaseCycles(input.phases)) {
    add(
      'PHASE_CYCLE',
      ['phases', cycle.index, 'after'],
      `phases are ordered in a cycle: ${[...cycle.ids, cycle.ids[0]].join(' → ')}`,
    );
  }
}

/** Each cycle once, reported at its first phase in declaration order. */
function findPhaseCycles(phases: Indexed<PhaseInput>[]): { index: number; ids: string[] }[] {
  const byId = new Map<string, Indexed<PhaseInput>>();
  for (const p of phases) if (!byId.has(p.value.id)) byId.set(p.value.id, p);
  const state = new Map<string, 'active' | 'done'>();
  const stack: string[] = [];
  const cycles: { index: number; ids: string[] }[] = [];

  const visit = (id: string) => {
    state.set(id, 'active');
    stack.push(id);
    for (const dep of byId.get(id)?.value.after ?? []) {
      if (!byId.has(dep)) continue;
      const s = state.get(dep);
      if (s === 'active') {
        const ids = stack.slice(stack.indexOf(dep));
        const first = ids
          .map((x) => byId.get(x)?.index ?? 0)
          .reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
        const start = ids.findIndex((x) => byId.get(x)?.index === first);
        // Rotate so the cycle reads from its first-declared phase, in "runs after" order.
        const rotated = [...ids.slice(start), ...ids.slice(0, start)];
        cycles.push({ index: first, ids: rotated });
      } else if (s === undefined) visit(dep);
    }
    stack.pop();
    state.set(id, 'done');
  };
  for (const p of phases) if (!state.has(p.value.id)) visit(p.value.id);
  return cycles.sort((a, b) => a.index - b.index);
}
