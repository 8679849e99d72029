/** Valid records for the store tests: the shared builders of @ployz/testkit. */
import { fixtures } from '@ployz/testkit';

export const { AT, commit, deployStatus, instance, machine, phase, release, revision, serviceSpec, volume } =
  fixtures;

export const SCOPE = { installation: 'local', authority: 'auth-default' } as const;
