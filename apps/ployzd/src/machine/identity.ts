/**
 * This machine's identity on disk: `<state>/machine.json` (public facts) and
 * `<state>/wg/private.key` (0600). Created once by `machine init`; read at every start.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MachineId, Name, PloyzError } from '@ployz/types';
import { z } from 'zod';
import { machineSubnet, overlayAddress } from './address.ts';
import { readIfPresent, writeAtomic } from './atomic-write.ts';

const run = promisify(execFile);

export const MachineIdentity = z.object({
  installation: Name,
  authority: Name,
  machine_id: MachineId,
  public_key: z.string(),
  overlay_ip: z.string(),
  overlay_prefix_length: z.number().int(),
  subnet: z.string(),
  region: z.string().min(1),
  /** The volume storage chosen at init (`zfs:<pool>`, `btrfs:<path>`, `dir:<path>`); absent: the daemon's default. */
  storage: z.string().optional(),
  /** WireGuard endpoints given at init (`--endpoint`); absent: `<LAN address>:<WireGuard port>`. */
  endpoints: z.array(z.string()).optional(),
  /** The machine whose invite this one joined with; absent on an installation's first machine. */
  joined_from: MachineId.optional(),
  /**
   * Overlay addresses of the machines holding JetStream, which this machine's ployz-nats is a leaf
   * of (docs/adr/0013-nats-leafnodes.md); absent: this machine holds JetStream itself.
   */
  nats_hubs: z.array(z.string()).min(1).optional(),
  /** The registry given at init or join (`--registry`): the data-plane images are pulled from it. */
  image_registry: z.string().optional(),
  created_at: z.string(),
});
export type MachineIdentity = z.infer<typeof MachineIdentity>;

export interface InitRequest {
  machineId?: string | undefined;
  installation?: string | undefined;
  authority?: string | undefined;
  region?: string | undefined;
  /** Already parsed and probed by the caller. */
  storage?: string | undefined;
  /** Already validated (fleet/endpoint.ts `parseEndpoints`). */
  endpoints?: string[] | undefined;
  /** Already parsed (`parseRegistryHost`). */
  registry?: string | undefined;
}

/** What a join answer fixes instead of deriving it here (the keys were sent to the issuer). */
export interface Joined {
  keys: { privateKey: string; publicKey: string };
  overlayIp: string;
  issuer: string;
  /** The machines holding JetStream, from the answer. */
  natsHubs: string[];
}

export function identityPath(stateDir: string): string {
  return join(stateDir, 'machine.json');
}
export function wireguardDir(stateDir: string): string {
  return join(stateDir, 'wg');
}
export function natsDataDir(stateDir: string): string {
  return join(stateDir, 'nats');
}

export async function readIdentity(stateDir: string): Promise<MachineIdentity | null> {
  const text = await readIfPresent(identityPath(stateDir));
  if (text === null) return null;
  const parsed = MachineIdentity.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new PloyzError(
      'STORE_CORRUPT',
      `${identityPath(stateDir)} does not match its schema; restore it or re-init`,
      {
        details: { issues: parsed.error.issues.map((i) => i.message) },
      },
    );
  }
  return parsed.data;
}

export async function generateWireguardKeys(): Promise<{ privateKey: string; publicKey: string }> {
  const { stdout: priv } = await run('wg', ['genkey']);
  const privateKey = priv.trim();
  const publicKey = await new Promise<string>((resolve, reject) => {
    const child = execFile('wg', ['pubkey'], (error, stdout) =>
      error ? reject(error) : resolve(stdout.trim()),
    );
    child.stdin?.end(`${privateKey}\n`);
  });
  return { privateKey, publicKey };
}

export function defaultMachineId(): string {
  const id = hostname()
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+/, '')
    .slice(0, 63);
  return id === '' ? 'machine' : id;
}

/** Create the identity; ALREADY_INITIALISED (and nothing written) when one exists. */
export async function createIdentity(
  stateDir: string,
  request: InitRequest,
  derive: { clusterRange: string; subnet?: string | undefined; overlayPrefix: string },
  joined?: Joined,
): Promise<MachineIdentity> {
  const existing = await readIdentity(stateDir);
  if (existing) {
    throw new PloyzError(
      'ALREADY_INITIALISED',
      `this machine is already ${existing.machine_id} in installation ${existing.installation}; nothing was changed`,
      { details: { machine_id: existing.machine_id, installation: existing.installation } },
    );
  }
  const fields = z
    .object({ machine_id: MachineId, installation: Name, authority: Name, region: z.string().min(1) })
    .safeParse({
      machine_id: request.machineId ?? defaultMachineId(),
      installation: request.installation ?? 'local',
      authority: request.authority ?? 'auth-default',
      region: request.region ?? 'default',
    });
  if (!fields.success) {
    const issue = fields.error.issues[0];
    throw new PloyzError('INVALID_ARGUMENT', `${String(issue?.path[0])}: ${issue?.message}`);
  }
  const keys = joined?.keys ?? (await generateWireguardKeys());
  const identity: MachineIdentity = {
    ...fields.data,
    public_key: keys.publicKey,
    overlay_ip: joined?.overlayIp ?? overlayAddress(keys.publicKey, derive.overlayPrefix),
    overlay_prefix_length: 48,
    subnet: derive.subnet ?? machineSubnet(keys.publicKey, derive.clusterRange),
    ...(request.storage === undefined ? {} : { storage: request.storage }),
    ...(request.endpoints === undefined || request.endpoints.length === 0
      ? {}
      : { endpoints: request.endpoints }),
    ...(joined === undefined ? {} : { joined_from: joined.issuer, nats_hubs: joined.natsHubs }),
    ...(request.registry === undefined ? {} : { image_registry: request.registry }),
    created_at: new Date().toISOString(),
  };
  await mkdir(wireguardDir(stateDir), { recursive: true, mode: 0o700 });
  await mkdir(natsDataDir(stateDir), { recursive: true });
  const keyFile = join(wireguardDir(stateDir), 'private.key');
  await writeFile(keyFile, `${keys.privateKey}\n`, { mode: 0o600 });
  await chmod(keyFile, 0o600);
  await writeAtomic(identityPath(stateDir), `${JSON.stringify(identity, null, 2)}\n`, 0o644);
  return identity;
}
