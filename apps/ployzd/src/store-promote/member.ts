/**
 * ployz-nats-store: a storage machine's JetStream cluster member (issue 19,
 * docs/adr/0020-store-cluster-member.md). A second nats-server in the networking netns beside
 * ployz-nats, with its own data directory, so the standalone store keeps running, untouched and
 * authoritative, while the promotion copies it (DESIGN.md §9: a standalone server restarted with
 * a `cluster` block loses its streams, so it is never reconfigured in place).
 *
 * Pure: the settings file and the container spec are functions of the inputs below. The supervisor
 * (dataplane/supervisor.ts) owns the container once the machine holds a member record
 * (member-state.ts): adopt-first like the other components, recreated with ployz-networking.
 *
 * - Routes on NATS_CLUSTER_PORT over wg0 between the three members' overlay addresses, each route
 *   authenticated as ROUTE_USER with a password derived from the installation's leaf secret
 *   (HMAC-SHA256, domain-separated): every machine that may be a leaf already holds that secret,
 *   and no new secret has to be handed out at join.
 * - Leafnode connections on NATS_STORE_LEAF_PORT with the installation's leaf secret (the same
 *   LEAF_USER as ADR 0013): after the switch-over every machine's ployz-nats is a leaf of the three.
 * - Clients (ployzd's migration and the switch-over) on NATS_STORE_CLIENT_PORT with the same
 *   per-component NKeys and permissions as ployz-nats (ADR 0011): the auth file is included.
 * - `default_js_domain` as on ployz-nats, so JetStream is reachable across the leaf connections.
 */
import { createHash, createHmac } from 'node:crypto';
import {
  formatHostPort,
  LEAF_USER,
  NATS_CLUSTER_PORT,
  NATS_STORE_CLIENT_PORT,
  NATS_STORE_LEAF_PORT,
  NATS_STORE_MONITOR_PORT,
  ROUTE_USER,
} from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import {
  type ContainerSpec,
  IN_NETWORKING_NETNS,
  NATS_MESH_PING,
  STORE_MEMBER_COMPONENT,
} from '../dataplane/component-spec.ts';
import { NATS_AUTH_FILE } from '../machine/nats-credentials.ts';

/**
 * Where the member's settings live in its container: ployz-nats's conf directory mounted at its
 * own path (ployz-nats keeps `/etc/ployz/nats`), the member's file beside nats.conf and auth.conf.
 */
export const STORE_CONFIG_DIR = '/etc/ployz/nats-store';
export const STORE_CONFIG_NAME = 'nats-store.conf';
export const STORE_CONFIG_FILE = `${STORE_CONFIG_DIR}/${STORE_CONFIG_NAME}`;
export { STORE_MEMBER_COMPONENT };

export interface StoreMemberInput {
  installation: string;
  authority: string;
  machineId: string;
  /** The three members' overlay IPv6 addresses, this machine's among them. */
  members: readonly { machineId: string; overlayIp: string }[];
  leafSecret: string;
}

/** The route password: derived, never stored (ADR 0020). */
export function routePassword(leafSecret: string): string {
  return createHmac('sha256', leafSecret).update('ployz-nats-store-route/v1').digest('base64url');
}

/** The JetStream cluster's name: one per installation and authority (`[A-Za-z0-9_-]`). */
export function storeClusterName(installation: string, authority: string): string {
  return `ployz_${installation}_${authority}`.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** The member's server name: distinct from ployz-nats's (the machine id) on the same machine. */
export function storeServerName(machineId: string): string {
  return `${machineId}-store`;
}

function checkMembers(input: StoreMemberInput): void {
  const ids = new Set(input.members.map((m) => m.machineId));
  const ips = new Set(input.members.map((m) => m.overlayIp));
  if (input.members.length !== 3 || ids.size !== 3 || ips.size !== 3 || !ids.has(input.machineId)) {
    throw new PloyzError(
      'INVALID_ARGUMENT',
      `a store cluster member needs three distinct members including itself (${input.machineId}); got ${[...ids].join(', ') || 'none'}`,
      { details: { machine: input.machineId, members: input.members.map((m) => m.machineId) } },
    );
  }
}

/** The member's nats.conf (STORE_CONFIG_FILE). The auth file is ployz-nats's, mounted beside it. */
export function storeMemberSettings(input: StoreMemberInput): string {
  checkMembers(input);
  const password = routePassword(input.leafSecret);
  const routes = input.members
    .filter((m) => m.machineId !== input.machineId)
    .map(
      (m) =>
        `nats-route://${ROUTE_USER}:${password}@${formatHostPort({ host: m.overlayIp, port: NATS_CLUSTER_PORT })}`,
    );
  return [
    '# Written by ployzd (apps/ployzd/src/store-promote/member.ts): a store cluster member.',
    `server_name: ${JSON.stringify(storeServerName(input.machineId))}`,
    `listen: "[::]:${NATS_STORE_CLIENT_PORT}"`,
    `http_port: ${NATS_STORE_MONITOR_PORT}`,
    'default_js_domain: { "$G": "" }',
    ...NATS_MESH_PING,
    'jetstream { store_dir: "/data" }',
    `cluster { name: ${JSON.stringify(storeClusterName(input.installation, input.authority))}, listen: "[::]:${NATS_CLUSTER_PORT}", no_advertise: true, authorization { user: ${JSON.stringify(ROUTE_USER)}, password: ${JSON.stringify(password)}, timeout: 2 }, routes: ${JSON.stringify(routes)} }`,
    `leafnodes { listen: "[::]:${NATS_STORE_LEAF_PORT}", authorization { user: ${JSON.stringify(LEAF_USER)}, password: ${JSON.stringify(input.leafSecret)}, timeout: 2 } }`,
    `include "${NATS_AUTH_FILE}"`,
    '',
  ].join('\n');
}

/** The leaf remote every machine's ployz-nats gets after the switch-over: the three members. */
export function storeLeafUrls(members: readonly { overlayIp: string }[], leafSecret: string): string[] {
  return members.map(
    (m) =>
      `nats-leaf://${LEAF_USER}:${leafSecret}@${formatHostPort({ host: m.overlayIp, port: NATS_STORE_LEAF_PORT })}`,
  );
}

export interface StoreMemberSpecInput extends StoreMemberInput {
  containerPrefix: string;
  image: string;
  imageId: string;
  /** Host directory of the member's JetStream data (`<state>/nats-store/data`), not ployz-nats's. */
  dataDir: string;
  /**
   * Host directory holding the member's settings (STORE_CONFIG_NAME) beside ployz-nats's auth file
   * (ployz-nats's own conf directory, mounted read-only): `include "auth.conf"` reads the same
   * file ployz-nats reads, so a rotation reaches both.
   */
  confDir: string;
  /** Identity labels (the system labels of the data plane, component `nats-store`). */
  labels: Record<string, string>;
}

/**
 * The member's container, a data-plane component the supervisor owns (adopt-first, recreated
 * with its parent): in the networking netns like ployz-nats, its own data directory; the settings
 * hash in the env makes a changed file drift.
 */
export function storeMemberSpec(input: StoreMemberSpecInput): ContainerSpec {
  const settings = storeMemberSettings(input);
  return {
    component: STORE_MEMBER_COMPONENT,
    name: `${input.containerPrefix}${STORE_MEMBER_COMPONENT}`,
    image: input.image,
    imageId: input.imageId,
    entrypoint: null,
    cmd: ['--config', STORE_CONFIG_FILE],
    env: { PLOYZ_NATS_SETTINGS_HASH: createHash('sha256').update(settings).digest('hex').slice(0, 16) },
    binds: [`${input.dataDir}:/data`, `${input.confDir}:${STORE_CONFIG_DIR}:ro`],
    ...IN_NETWORKING_NETNS,
    healthcheck: null,
    labels: { ...input.labels },
    beside: null,
  };
}
