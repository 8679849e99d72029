/**
 * The desired specification of every data-plane component (DESIGN.md §3), as a pure function of
 * the daemon config, the machine identity and the resolved image ids. The config hash is taken over
 * the whole spec; the parent container id is identity too, but kept out of the hash (it is checked
 * separately, seed 000).
 */

import { configHash, type ContainerSpec as IdentityContainerSpec, LABELS } from '@ployz/identity';
import { subnetHost } from './machine-address.ts';

export const COMPONENTS = ['networking', 'nats', 'gateway', 'dns'] as const;
export type ComponentName = (typeof COMPONENTS)[number];

/** The netns-owning parent of every other component. */
export const PARENT_COMPONENT: Record<ComponentName, ComponentName | null> = {
  networking: null,
  nats: 'networking',
  gateway: 'networking',
  dns: 'networking',
};

export interface PortPublish {
  containerPort: number;
  protocol: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
}

export type SpecNetwork = { kind: 'bridge'; bridge: string; ipv4: string } | { kind: 'parent' };

export interface ContainerSpec {
  component: ComponentName;
  name: string;
  image: string;
  /** Resolved local image id; part of the hash, so a rebuilt image is drift. */
  imageId: string;
  entrypoint: string[] | null;
  cmd: string[];
  env: Record<string, string>;
  binds: string[];
  capAdd: string[];
  devices: string[];
  sysctls: Record<string, string>;
  user: string | null;
  network: SpecNetwork;
  ports: PortPublish[];
  /** Docker healthcheck command (`CMD` form); status shows a failing one as `unhealthy`. */
  healthcheck: string[] | null;
  /** Identity labels other than the hash and the parent id. */
  labels: Record<string, string>;
}

export interface DesiredComponent {
  spec: ContainerSpec;
  configHash: string;
  parent: ComponentName | null;
}

export interface DataPlaneImages {
  networking: string;
  nats: string;
  gateway: string;
  dns: string;
}

export interface DataPlaneInput {
  installation: string;
  authority: string;
  machineId: string;
  overlayIp: string;
  /** The overlay /48, routed through wg0. */
  overlayPrefix: string;
  subnet: string;
  containerPrefix: string;
  bridgeName: string;
  gatewayHostPort: number;
  gatewayHostIp: string;
  wireguardPort: number;
  /** Host directories bind-mounted into the components. */
  wireguardKeyDir: string;
  natsDataDir: string;
  images: DataPlaneImages;
  imageIds: DataPlaneImages;
  /** Per-component extra env (tests use it to force drift; operators to tune). */
  extraEnv: Partial<Record<ComponentName, Record<string, string>>>;
}

export const NATS_CLIENT_PORT = 4222;
export const NATS_MONITOR_PORT = 8222;
export const GATEWAY_HTTP_PORT = 8080;
export const GATEWAY_HTTPS_PORT = 8443;
export const GATEWAY_ADMIN_PORT = 9180;
export const DNS_PORT = 53;
export const DNS_ADMIN_PORT = 9053;

function systemLabels(input: DataPlaneInput, component: ComponentName): Record<string, string> {
  return {
    [LABELS.managed]: 'true',
    [LABELS.kind]: 'system',
    [LABELS.component]: component,
    [LABELS.installation]: input.installation,
  };
}

function withExtra(input: DataPlaneInput, component: ComponentName, env: Record<string, string>) {
  return { ...env, ...(input.extraEnv[component] ?? {}) };
}

/** A node one-liner (the app images have node, not curl): exit 0 on HTTP 200. */
function httpHealthcheck(url: string): string[] {
  return [
    'node',
    '-e',
    `fetch(${JSON.stringify(url)},{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))`,
  ];
}

export function natsUrlInNetns(): string {
  return `nats://127.0.0.1:${NATS_CLIENT_PORT}`;
}

/** Where the host-side daemon reaches NATS: the networking container's bridge address. */
export function natsUrlFromHost(subnet: string): string {
  return `nats://${subnetHost(subnet, 2)}:${NATS_CLIENT_PORT}`;
}

export function desiredSpecs(input: DataPlaneInput): ContainerSpec[] {
  const name = (c: string) => `${input.containerPrefix}${c}`;
  const common = {
    PLOYZ_INSTALLATION: input.installation,
    PLOYZ_AUTHORITY: input.authority,
    PLOYZ_MACHINE_ID: input.machineId,
    PLOYZ_NATS_URL: natsUrlInNetns(),
  };
  const networking: ContainerSpec = {
    component: 'networking',
    name: name('networking'),
    image: input.images.networking,
    imageId: input.imageIds.networking,
    entrypoint: null,
    cmd: [],
    // The ployz/networking entry contract: images/README.md.
    env: withExtra(input, 'networking', {
      PLOYZ_WG_INTERFACE: 'wg0',
      PLOYZ_WG_PRIVATE_KEY_FILE: '/etc/ployz/wg/private.key',
      PLOYZ_WG_LISTEN_PORT: String(input.wireguardPort),
      PLOYZ_WG_ADDRESSES: `${input.overlayIp}/128`,
      PLOYZ_WG_ROUTES: input.overlayPrefix,
    }),
    binds: [`${input.wireguardKeyDir}:/etc/ployz/wg:ro`],
    capAdd: ['NET_ADMIN'],
    devices: ['/dev/net/tun'],
    // The netns is shared by every child: non-root children (gateway, dns) may bind :53 and :80.
    // Children may bind the overlay address before wg0 carries it (ip_nonlocal_bind).
    sysctls: {
      'net.ipv6.conf.all.disable_ipv6': '0',
      'net.ipv4.ip_unprivileged_port_start': '0',
      'net.ipv6.ip_nonlocal_bind': '1',
    },
    user: null,
    network: { kind: 'bridge', bridge: input.bridgeName, ipv4: subnetHost(input.subnet, 2) },
    ports: [
      {
        containerPort: GATEWAY_HTTP_PORT,
        protocol: 'tcp',
        hostIp: input.gatewayHostIp,
        hostPort: input.gatewayHostPort,
      },
      {
        containerPort: input.wireguardPort,
        protocol: 'udp',
        hostIp: '0.0.0.0',
        hostPort: input.wireguardPort,
      },
    ],
    healthcheck: null, // the image defines its own (wg0 up)
    labels: systemLabels(input, 'networking'),
  };
  const nats: ContainerSpec = {
    component: 'nats',
    name: name('nats'),
    image: input.images.nats,
    imageId: input.imageIds.nats,
    entrypoint: null,
    cmd: [
      '--jetstream',
      '--store_dir',
      '/data',
      // `::` is dual-stack: the bridge address (for the host) and the overlay IPv6 (for the mesh).
      '--addr',
      '::',
      '--port',
      String(NATS_CLIENT_PORT),
      '--http_port',
      String(NATS_MONITOR_PORT),
      '--server_name',
      input.machineId,
    ],
    env: withExtra(input, 'nats', {}),
    // The image runs as uid 10002; the daemon chowns the host directory to it.
    binds: [`${input.natsDataDir}:/data`],
    capAdd: [],
    devices: [],
    sysctls: {},
    user: null,
    network: { kind: 'parent' },
    ports: [],
    healthcheck: null,
    labels: systemLabels(input, 'nats'),
  };
  const gateway: ContainerSpec = {
    component: 'gateway',
    name: name('gateway'),
    image: input.images.gateway,
    imageId: input.imageIds.gateway,
    entrypoint: null,
    cmd: [],
    // apps/ployz-gateway/src/config.ts; admin on the bridge address so the host can probe health.
    env: withExtra(input, 'gateway', {
      ...common,
      PLOYZ_GATEWAY_HTTP_PORT: String(GATEWAY_HTTP_PORT),
      PLOYZ_GATEWAY_HTTPS_PORT: String(GATEWAY_HTTPS_PORT),
      PLOYZ_GATEWAY_ADMIN_HOST: subnetHost(input.subnet, 2),
      PLOYZ_GATEWAY_ADMIN_PORT: String(GATEWAY_ADMIN_PORT),
    }),
    binds: [],
    capAdd: [],
    devices: [],
    sysctls: {},
    user: null,
    network: { kind: 'parent' },
    ports: [],
    healthcheck: httpHealthcheck(`http://${subnetHost(input.subnet, 2)}:${GATEWAY_ADMIN_PORT}/_ployz/health`),
    labels: systemLabels(input, 'gateway'),
  };
  const dns: ContainerSpec = {
    component: 'dns',
    name: name('dns'),
    image: input.images.dns,
    imageId: input.imageIds.dns,
    entrypoint: null,
    cmd: [],
    // apps/ployz-dns/src/config.ts: workloads on the bridge use .2 as their resolver.
    env: withExtra(input, 'dns', {
      ...common,
      PLOYZ_DNS_LISTEN: `${subnetHost(input.subnet, 2)}:${DNS_PORT},127.0.0.1:${DNS_PORT},[${input.overlayIp}]:${DNS_PORT}`,
      PLOYZ_DNS_ADMIN: `${subnetHost(input.subnet, 2)}:${DNS_ADMIN_PORT}`,
    }),
    binds: [],
    capAdd: [],
    devices: [],
    sysctls: {},
    user: null,
    network: { kind: 'parent' },
    ports: [],
    healthcheck: httpHealthcheck(`http://${subnetHost(input.subnet, 2)}:${DNS_ADMIN_PORT}/_ployz/health`),
    labels: systemLabels(input, 'dns'),
  };
  return [networking, nats, gateway, dns];
}

/**
 * @ployz/identity's ContainerSpec for the hash. The parent's id is left out on purpose: a child
 * names its parent symbolically here, and the parent id is compared through its own label, so a
 * replaced parent reads as `parent_changed`, not as config drift (seed 000).
 */
export function identitySpec(spec: ContainerSpec): IdentityContainerSpec {
  return {
    name: spec.name,
    image: spec.imageId,
    command: spec.cmd,
    entrypoint: spec.entrypoint,
    env: spec.env,
    labels: spec.labels,
    mounts: spec.binds.map((b) => {
      const [source = '', target = '', mode] = b.split(':');
      return { type: 'bind' as const, source, target, read_only: mode === 'ro' };
    }),
    network_mode: spec.network.kind === 'bridge' ? spec.network.bridge : 'container:networking',
    parent_container_id: null,
    ip: spec.network.kind === 'bridge' ? spec.network.ipv4 : null,
    ports: spec.ports.map((p) => ({
      container_port: p.containerPort,
      protocol: p.protocol,
      host_port: p.hostPort,
      host_ip: p.hostIp,
    })),
    user: spec.user,
    cap_add: spec.capAdd,
    devices: spec.devices,
    sysctls: spec.sysctls,
    restart_policy: 'unless-stopped',
    extra: { image_ref: spec.image, component: spec.component, healthcheck: spec.healthcheck },
  };
}

export function specHash(spec: ContainerSpec): string {
  return configHash(identitySpec(spec));
}

export function desiredComponents(input: DataPlaneInput): DesiredComponent[] {
  return desiredSpecs(input).map((spec) => ({
    spec,
    configHash: specHash(spec),
    parent: PARENT_COMPONENT[spec.component],
  }));
}
