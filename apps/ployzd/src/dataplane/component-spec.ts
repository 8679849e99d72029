/**
 * The desired specification of every data-plane component (DESIGN.md §3), as a pure function of
 * the daemon config, the machine identity and the resolved image ids. The config hash is taken over
 * the whole spec; the parent container id is identity too, but kept out of the hash (it is checked
 * separately, seed 000).
 */

import { createHash } from 'node:crypto';
import { configHash, type ContainerSpec as IdentityContainerSpec, LABELS } from '@ployz/identity';
import {
  ADMIN_PATHS,
  DNS_ADMIN_ALT_PORT,
  DNS_ADMIN_PORT,
  DNS_PORT,
  DnsEnv,
  formatHostPort,
  GATEWAY_ADMIN_ALT_PORT,
  GATEWAY_ADMIN_PORT,
  GATEWAY_HTTP_PORT,
  GATEWAY_HTTPS_PORT,
  GatewayEnv,
  type HostPort,
  LEAF_USER,
  NATS_CLIENT_PORT,
  NATS_CLUSTER_PORT,
  NATS_LEAF_PORT,
  NATS_MONITOR_PORT,
  NATS_STORE_CLIENT_PORT,
  NATS_STORE_LEAF_PORT,
  NATS_STORE_MONITOR_PORT,
  NATS_URL_IN_NETNS,
  VOLUME_TRANSFER_PORT,
} from '@ployz/protocol';
import { subnetHost } from '../machine/address.ts';
import {
  NATS_AUTH_FILE,
  NATS_CONFIG_DIR,
  NATS_CONFIG_FILE,
  NATS_SEED_FILE,
  NATS_SEED_MOUNT,
} from '../machine/nats-credentials.ts';

export const COMPONENTS = ['networking', 'nats', 'gateway', 'dns'] as const;
/** The components every machine runs (their images are the daemon's `--image-<component>`). */
export type CoreComponentName = (typeof COMPONENTS)[number];
/**
 * A storage machine's JetStream cluster member (docs/adr/0020-store-cluster-member.md): desired
 * only while the machine holds its member record (store-promote/member-state.ts); a child of
 * ployz-networking like nats, so a recreated networking recreates it too.
 */
export const STORE_MEMBER_COMPONENT = 'nats-store';
export type ComponentName = CoreComponentName | typeof STORE_MEMBER_COMPONENT;

/** The netns-owning parent of every other component. */
export const PARENT_COMPONENT: Record<ComponentName, ComponentName | null> = {
  networking: null,
  nats: 'networking',
  gateway: 'networking',
  dns: 'networking',
  'nats-store': 'networking',
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
  /** The reference the container is created from; not part of the hash (the id is). */
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
  /**
   * Replaced beside the old container (docs/adr/0014-replace-beside.md): the health URL the new
   * one answers on while the old holds the admin port, and how long the old may drain. Null:
   * replaced by stop-then-start. Not part of the hash (the env that enables it is).
   */
  beside: { altHealthUrl: string; healthUrl: string; drainSeconds: number } | null;
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
  /** Host port published onto the gateway's HTTPS listener (same host IP); null: not published. */
  gatewayHttpsHostPort: number | null;
  gatewayHostIp: string;
  wireguardPort: number;
  /** Host directories bind-mounted into the components. */
  wireguardKeyDir: string;
  natsDataDir: string;
  /**
   * What ployzd's ACME feed writes for this machine's gateway (certs/, challenges/;
   * docs/adr/0015-acme.md), mounted read-only at GATEWAY_ACME_MOUNT. Its files change in place,
   * so only the path is part of the gateway's hash.
   */
  acmeDir: string;
  /** NATS identities (docs/adr/0011-trust-model.md); null runs NATS without auth (tests only). */
  natsAuth: {
    /**
     * Host directory holding nats.conf (`natsServerSettings`) and the auth file it includes
     * (public keys and permissions), mounted read-only.
     */
    confDir: string;
    /**
     * Host directories holding each edge app's seed file, mounted read-only at NATS_SEED_MOUNT.
     * The config and the seeds change in place on rotation (nats reloads, clients re-read at
     * reconnect), so neither is part of any container's hash: rotation recreates nothing.
     */
    gatewaySeedDir: string;
    dnsSeedDir: string;
  } | null;
  /**
   * ployz-nats's place in the installation's NATS (docs/adr/0013-nats-leafnodes.md): `hubs` null —
   * this machine holds JetStream and accepts the members' leafnode connections; otherwise it runs
   * no JetStream and is a leaf of the hubs (their overlay addresses) on `hubPort` (default
   * NATS_LEAF_PORT; the store members' NATS_STORE_LEAF_PORT after a promotion, ADR 0020). Null:
   * standalone (tests).
   */
  natsMesh: {
    leafSecret: string;
    hubs: readonly string[] | null;
    hubPort?: number;
    /**
     * Try `hubs` in their order (`dont_randomize`) rather than at random: a store member's own
     * machine lists its member first, so its ployz-nats reaches JetStream on the same machine
     * whatever else is cut, and answers STORE_NO_QUORUM at once rather than after a dead link
     * to another member is noticed.
     */
    ordered?: boolean;
  } | null;
  images: DataPlaneImages;
  imageIds: DataPlaneImages;
  /** Per-component extra env (tests use it to force drift; operators to tune). */
  extraEnv: Partial<Record<ComponentName, Record<string, string>>>;
}

/** Where the gateway reads the ACME feed (`--acme-dir`). */
export const GATEWAY_ACME_MOUNT = '/run/ployz/acme';

/** Host numbers on the machine's bridge /24: the host (the bridge gateway) and the networking container. */
const HOST_BRIDGE_HOST = 1;
const NETWORKING_HOST = 2;

/** The host's own address on the bridge (`.1`): the one source the guard lets reach system ports. */
export function hostBridgeAddress(subnet: string): string {
  return subnetHost(subnet, HOST_BRIDGE_HOST);
}

/**
 * The networking container's bridge address (`.2`): where the host reaches NATS and the edge
 * apps' admin listeners, and every workload's resolver (ployz-dns listens on it).
 */
export function networkingAddress(subnet: string): string {
  return subnetHost(subnet, NETWORKING_HOST);
}

/** Where the host (ployzd, the Docker healthchecks) reaches each edge app's admin listener. */
export function gatewayAdminAddress(subnet: string): HostPort {
  return { host: networkingAddress(subnet), port: GATEWAY_ADMIN_PORT };
}
export function dnsAdminAddress(subnet: string): HostPort {
  return { host: networkingAddress(subnet), port: DNS_ADMIN_PORT };
}

/**
 * How long a replacement edge app waits for its first routing view before binding anyway
 * (`startWaitMs`): the replaced one serves meanwhile.
 */
export const REPLACE_START_WAIT_MS = 10_000;

function besideHealth(subnet: string, altPort: number): string {
  return `http://${formatHostPort({ host: networkingAddress(subnet), port: altPort })}${ADMIN_PATHS.health}`;
}

/**
 * System ports a workload on the bridge must not reach (docs/adr/0011-trust-model.md): the
 * networking container rejects TCP to them from the subnet except from the host's bridge address.
 * DNS (53) and the gateway's serving ports stay open.
 */
export const GUARDED_TCP_PORTS = [
  NATS_CLIENT_PORT,
  NATS_CLUSTER_PORT,
  NATS_LEAF_PORT,
  NATS_MONITOR_PORT,
  GATEWAY_ADMIN_PORT,
  GATEWAY_ADMIN_ALT_PORT,
  DNS_ADMIN_PORT,
  DNS_ADMIN_ALT_PORT,
  // The store cluster member's (docs/adr/0020-store-cluster-member.md).
  NATS_STORE_CLIENT_PORT,
  NATS_STORE_LEAF_PORT,
  NATS_STORE_MONITOR_PORT,
  // The volume-move transfer listener on wg0 (docs/adr/0021-volume-move-transfer.md).
  VOLUME_TRANSFER_PORT,
] as const;

export function systemLabels(
  input: Pick<DataPlaneInput, 'installation'>,
  component: ComponentName,
): Record<string, string> {
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

/** A node one-liner (the app images have node, not curl): exit 0 when the admin health is 200. */
function adminHealthcheck(admin: HostPort): string[] {
  const url = `http://${formatHostPort(admin)}${ADMIN_PATHS.health}`;
  return [
    'node',
    '-e',
    `fetch(${JSON.stringify(url)},{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))`,
  ];
}

/**
 * How fast a server-to-server link (leaf, route) to a machine that vanished is closed: a PING every
 * 2 s, closed with two unanswered — about 6 s instead of nats-server's default 2 min × 2. Routes
 * and solicited leaf connections are pinged even while traffic flows, so a machine cut from the
 * network (no RST, the TCP connection just goes silent) is left and the leaf reconnects to
 * another hub or member. Measured (e2e store-promote): with the defaults a leaf connected to a
 * cut member stayed on it for minutes and every store call through it timed out.
 */
export const NATS_MESH_PING = ['ping_interval: "2s"', 'ping_max: 2'] as const;

/**
 * ployz-nats's server settings file (with auth; `NATS_CONFIG_FILE`). The credentials are in the
 * included auth file, which changes on rotation without touching this one.
 */
export function natsServerSettings(input: Pick<DataPlaneInput, 'machineId' | 'natsMesh'>): string {
  const mesh = input.natsMesh;
  const lines = [
    '# Written by ployzd (apps/ployzd/src/dataplane/component-spec.ts). Reloaded with SIGHUP.',
    `server_name: ${JSON.stringify(input.machineId)}`,
    // `::` is dual-stack: the bridge address (for the host) and the overlay IPv6 (for the mesh).
    `listen: "[::]:${NATS_CLIENT_PORT}"`,
    `http_port: ${NATS_MONITOR_PORT}`,
  ];
  if (mesh !== null) {
    // Without it nats-server 2.9 denies $JS.API/$KV across every leaf connection ("JetStream Not
    // Extended"); with it the leaf's clients reach the hub's JetStream by plain interest.
    lines.push('default_js_domain: { "$G": "" }', ...NATS_MESH_PING);
  }
  if (mesh === null || mesh.hubs === null) lines.push('jetstream { store_dir: "/data" }');
  if (mesh !== null && mesh.hubs === null) {
    lines.push(
      `leafnodes { listen: "[::]:${NATS_LEAF_PORT}", authorization { user: ${JSON.stringify(LEAF_USER)}, password: ${JSON.stringify(mesh.leafSecret)}, timeout: 2 } }`,
    );
  } else if (mesh !== null && mesh.hubs !== null) {
    const urls = mesh.hubs.map(
      (hub) =>
        `nats-leaf://${LEAF_USER}:${mesh.leafSecret}@${formatHostPort({ host: hub, port: mesh.hubPort ?? NATS_LEAF_PORT })}`,
    );
    const order = mesh.ordered === true ? ', dont_randomize: true' : '';
    lines.push(`leafnodes { reconnect: 2, remotes: [ { urls: ${JSON.stringify(urls)}${order} } ] }`);
  }
  lines.push(`include "${NATS_AUTH_FILE}"`, '');
  return lines.join('\n');
}

/** ployz-nats's monitoring endpoint as the host reaches it (the bridge address `.2`). */
export function natsMonitorUrlFromHost(subnet: string): string {
  return `http://${networkingAddress(subnet)}:${NATS_MONITOR_PORT}`;
}

/** Where the host-side daemon reaches NATS: the networking container's bridge address. */
export function natsUrlFromHost(subnet: string): string {
  return `nats://${networkingAddress(subnet)}:${NATS_CLIENT_PORT}`;
}

/** What every child of ployz-networking shares: its netns, no ports, caps or devices of its own. */
export const IN_NETWORKING_NETNS = {
  capAdd: [],
  devices: [],
  sysctls: {},
  user: null,
  network: { kind: 'parent' },
  ports: [],
} as const satisfies Partial<ContainerSpec>;

export function desiredSpecs(input: DataPlaneInput): ContainerSpec[] {
  const name = (c: string) => `${input.containerPrefix}${c}`;
  const bridgeIp = networkingAddress(input.subnet);
  // What both edge apps read to follow the routing projection (@ployz/protocol components.ts).
  const edge = {
    installation: input.installation,
    authority: input.authority,
    machineId: input.machineId,
    natsUrl: NATS_URL_IN_NETNS,
    natsNkeySeedFile: input.natsAuth ? NATS_SEED_FILE : undefined,
  };
  const gatewayAdmin = gatewayAdminAddress(input.subnet);
  const dnsAdmin = dnsAdminAddress(input.subnet);
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
      PLOYZ_GUARD_SUBNET: input.subnet,
      PLOYZ_GUARD_ALLOW: hostBridgeAddress(input.subnet),
      PLOYZ_GUARD_TCP_PORTS: GUARDED_TCP_PORTS.join(','),
    }),
    binds: [`${input.wireguardKeyDir}:/etc/ployz/wg:ro`],
    capAdd: ['NET_ADMIN'],
    devices: ['/dev/net/tun'],
    // The netns is shared by every child: non-root children (gateway, dns) may bind :53 and :80.
    // Children may bind the overlay address before wg0 carries it (ip_nonlocal_bind). Workload
    // traffic between machines is routed through this netns, bridge ⇄ wg0 (ip_forward; mesh/).
    sysctls: {
      'net.ipv4.ip_forward': '1',
      'net.ipv6.conf.all.disable_ipv6': '0',
      'net.ipv4.ip_unprivileged_port_start': '0',
      'net.ipv6.ip_nonlocal_bind': '1',
      // A listener that closes hands the connections in its accept queue to another socket of
      // its SO_REUSEPORT group instead of resetting them: the replaced gateway's drain
      // (docs/adr/0014-replace-beside.md).
      'net.ipv4.tcp_migrate_req': '1',
    },
    user: null,
    network: { kind: 'bridge', bridge: input.bridgeName, ipv4: bridgeIp },
    ports: [
      {
        containerPort: GATEWAY_HTTP_PORT,
        protocol: 'tcp',
        hostIp: input.gatewayHostIp,
        hostPort: input.gatewayHostPort,
      },
      ...(input.gatewayHttpsHostPort === null
        ? []
        : [
            {
              containerPort: GATEWAY_HTTPS_PORT,
              protocol: 'tcp' as const,
              hostIp: input.gatewayHostIp,
              hostPort: input.gatewayHttpsHostPort,
            },
          ]),
      {
        containerPort: input.wireguardPort,
        protocol: 'udp',
        hostIp: '0.0.0.0',
        hostPort: input.wireguardPort,
      },
    ],
    healthcheck: null, // the image defines its own (wg0 up)
    labels: systemLabels(input, 'networking'),
    beside: null,
  };
  const nats: ContainerSpec = {
    component: 'nats',
    name: name('nats'),
    image: input.images.nats,
    imageId: input.imageIds.nats,
    entrypoint: null,
    // With auth, every setting is in the file: a SIGHUP reload re-reads only the file (nats-server
    // 2.9 does not re-apply flags: it refused a reload over --server_name, and switched JetStream
    // off when that was a flag). The settings hash makes a changed file drift.
    cmd: input.natsAuth
      ? ['--config', NATS_CONFIG_FILE]
      : [
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
    env: withExtra(
      input,
      'nats',
      input.natsAuth
        ? {
            PLOYZ_NATS_SETTINGS_HASH: createHash('sha256')
              .update(natsServerSettings(input))
              .digest('hex')
              .slice(0, 16),
          }
        : {},
    ),
    // The image runs as uid 10002; the daemon chowns the host directory to it.
    binds: [
      `${input.natsDataDir}:/data`,
      ...(input.natsAuth ? [`${input.natsAuth.confDir}:${NATS_CONFIG_DIR}:ro`] : []),
    ],
    ...IN_NETWORKING_NETNS,
    healthcheck: null,
    labels: systemLabels(input, 'nats'),
    beside: null,
  };
  const gateway: ContainerSpec = {
    component: 'gateway',
    name: name('gateway'),
    image: input.images.gateway,
    imageId: input.imageIds.gateway,
    entrypoint: null,
    cmd: [],
    // Admin on the bridge address so the host can probe health.
    env: withExtra(
      input,
      'gateway',
      GatewayEnv.build({
        ...edge,
        httpPort: GATEWAY_HTTP_PORT,
        httpsPort: GATEWAY_HTTPS_PORT,
        adminHost: gatewayAdmin.host,
        adminPort: gatewayAdmin.port,
        // One worker per core the container may use, sharing 80/443 (docs/adr/0012-gateway-workers.md).
        workers: 0,
        startWaitMs: REPLACE_START_WAIT_MS,
        adminAltPort: GATEWAY_ADMIN_ALT_PORT,
        // HTTPS with the certificates ployzd's renewer obtains (docs/adr/0015-acme.md).
        acmeDir: GATEWAY_ACME_MOUNT,
      }),
    ),
    binds: [
      ...(input.natsAuth ? [`${input.natsAuth.gatewaySeedDir}:${NATS_SEED_MOUNT}:ro`] : []),
      `${input.acmeDir}:${GATEWAY_ACME_MOUNT}:ro`,
    ],
    ...IN_NETWORKING_NETNS,
    healthcheck: adminHealthcheck(gatewayAdmin),
    labels: systemLabels(input, 'gateway'),
    // Its drain timeout (GatewayEnv drainTimeoutMs, 10 s) and a margin.
    beside: {
      altHealthUrl: besideHealth(input.subnet, GATEWAY_ADMIN_ALT_PORT),
      healthUrl: besideHealth(input.subnet, gatewayAdmin.port),
      drainSeconds: 15,
    },
  };
  const dns: ContainerSpec = {
    component: 'dns',
    name: name('dns'),
    image: input.images.dns,
    imageId: input.imageIds.dns,
    entrypoint: null,
    cmd: [],
    // Workloads on the bridge use .2 as their resolver; the mesh asks the overlay address.
    env: withExtra(
      input,
      'dns',
      DnsEnv.build({
        ...edge,
        listen: [
          { host: bridgeIp, port: DNS_PORT },
          { host: '127.0.0.1', port: DNS_PORT },
          { host: input.overlayIp, port: DNS_PORT },
        ],
        admin: dnsAdmin,
        startWaitMs: REPLACE_START_WAIT_MS,
        adminAltPort: DNS_ADMIN_ALT_PORT,
      }),
    ),
    binds: input.natsAuth ? [`${input.natsAuth.dnsSeedDir}:${NATS_SEED_MOUNT}:ro`] : [],
    ...IN_NETWORKING_NETNS,
    healthcheck: adminHealthcheck(dnsAdmin),
    labels: systemLabels(input, 'dns'),
    beside: {
      altHealthUrl: besideHealth(input.subnet, DNS_ADMIN_ALT_PORT),
      healthUrl: besideHealth(input.subnet, dnsAdmin.port),
      drainSeconds: 5,
    },
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
    // The image is its id (`image` above), never its reference: the same image under another
    // name (`ployz/gateway:latest` → `<registry>/ployz/gateway:0.1.0`) is adopted, not recreated.
    extra: { component: spec.component, healthcheck: spec.healthcheck },
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
