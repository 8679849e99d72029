/**
 * The local API's registry routes (`ployzctl registry login|ls|logout`): credentials per
 * installation, checked with the registry through this machine's engine (`POST /auth`) before
 * they are stored sealed (registry-auth.ts). No answer carries the password.
 */
import type { InstallationKey } from '@ployz/identity';
import type { RegistryView } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import type { DaemonContext } from '../daemon/daemon.ts';
import { pullAdvice, pullFailureOf } from './pull-progress.ts';
import { engineMessage } from './puller.ts';
import { type RegistryCredentialRecord, type RegistryCredentials, sealCredential } from './registry-auth.ts';

export interface RegistryRouteDeps {
  credentials: RegistryCredentials;
  key: InstallationKey;
  machine: string;
}

function view(r: RegistryCredentialRecord): RegistryView {
  return { host: r.host, username: r.username, updated_at: r.updated_at, updated_by: r.updated_by };
}

export function registryRoutes(ctx: DaemonContext, deps: () => RegistryRouteDeps): void {
  ctx.implement('registryLogin', async (body) => {
    const { credentials, key, machine } = deps();
    if (body.verify) {
      try {
        await ctx.docker.docker.checkAuth({
          username: body.username,
          password: body.password,
          serveraddress: body.host,
        });
      } catch (error) {
        const message = engineMessage(error);
        const reason = pullFailureOf(message);
        if (reason === 'unauthorized') {
          throw new PloyzError(
            'REGISTRY_AUTH_FAILED',
            `${body.host} refused the username and password for ${body.username}: ${message}; nothing was stored`,
            { details: { host: body.host, username: body.username } },
          );
        }
        throw new PloyzError(
          'IMAGE_PULL_FAILED',
          `cannot check the credentials with ${body.host} from ${machine} (${reason}): ${message}; ${pullAdvice(reason, body.host)}, or pass --no-verify`,
          { details: { registry: body.host, machine, reason, message } },
        );
      }
    }
    const record = sealCredential(key, body, { machine, at: new Date().toISOString() });
    const saved = await credentials.modify([body.host], () => record);
    return { ...view(saved?.value ?? record), verified: body.verify };
  });

  ctx.implement('registryList', async () => {
    const { credentials } = deps();
    const registries = (await credentials.list()).map((r) => view(r.value));
    registries.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
    return { registries };
  });

  ctx.implement('registryLogout', async (body) => {
    const { credentials } = deps();
    const had = (await credentials.get(body.host)) !== null;
    if (had) await credentials.discard([body.host]);
    return { host: body.host, removed: had };
  });
}
