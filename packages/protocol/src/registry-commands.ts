/**
 * Registry credentials per installation (`ployzctl registry login|ls|logout`): the local API
 * bodies. The password goes from ployzctl to its own ployzd over the local socket once; ployzd
 * stores it sealed under the installation key (docs/adr/0002-sealed-secrets.md) in NATS KV, and
 * the machine that pulls unseals it. No answer ever carries it back.
 */
import { registryOf } from '@ployz/types';
import { z } from 'zod';

/** `host[:port]` as an image names it: `registry.example.com`, `127.0.0.1:5000`, `localhost:5000`. */
export const RegistryHost = z
  .string()
  .min(1)
  .max(255)
  .refine((h) => registryOf(`${h}/x`) === h, {
    message:
      'a registry host as an image names it: a host with a dot or a port, or localhost (e.g. registry.example.com, 127.0.0.1:5000)',
  });

export const RegistryLoginRequest = z.object({
  host: RegistryHost,
  username: z.string().min(1).max(256),
  password: z.string().min(1).max(8192),
  /** Ask the registry first (through this machine's Docker engine); false: store without asking. */
  verify: z.boolean().default(true),
  actor: z.string().nullable().default(null),
});
export type RegistryLoginRequest = z.infer<typeof RegistryLoginRequest>;

export const RegistryView = z.object({
  host: z.string(),
  username: z.string(),
  updated_at: z.string(),
  /** The machine whose ployzd stored it. */
  updated_by: z.string(),
});
export type RegistryView = z.infer<typeof RegistryView>;

export const RegistryLoginResult = RegistryView.extend({
  /** The registry accepted the credentials (false: stored with verify = false). */
  verified: z.boolean(),
});
export type RegistryLoginResult = z.infer<typeof RegistryLoginResult>;

export const RegistryList = z.object({ registries: z.array(RegistryView) });
export type RegistryList = z.infer<typeof RegistryList>;

export const RegistryLogoutRequest = z.object({ host: RegistryHost });
export type RegistryLogoutRequest = z.infer<typeof RegistryLogoutRequest>;

export const RegistryLogoutResult = z.object({ host: z.string(), removed: z.boolean() });
export type RegistryLogoutResult = z.infer<typeof RegistryLogoutResult>;
