import type { ReleaseRecord } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { instanceRecord } from '../../test/fakes/sample-records.ts';
import { execTarget } from './exec.ts';

const release: ReleaseRecord = {
  namespace: 'shop',
  service: 'web',
  revision: 'rev-a',
  deploy: 'dep-1',
  slots: [{ slot: 0, machine: 'm2', instance: 'active' }],
  updated_at: '2026-01-01T00:00:00.000Z',
};
const target = { namespace: 'shop', service: 'web' };

describe('execTarget', () => {
  it('picks the ready instance of the committed release before a leftover, else the one asked for', () => {
    const instances = [instanceRecord('leftover'), instanceRecord('active', { machine: 'm2' })];
    expect(execTarget(target, instances, release).id).toBe('active');
    expect(execTarget({ ...target, instance: 'leftover' }, instances, release).id).toBe('leftover');
  });

  it('is NO_RUNNING_INSTANCE when nothing runs or the instance asked for does not', () => {
    const stopped = [instanceRecord('active', { state: 'stopped' })];
    expect(() => execTarget(target, stopped, release)).toThrow(
      expect.objectContaining({ code: 'NO_RUNNING_INSTANCE' }),
    );
    expect(() => execTarget({ ...target, instance: 'nope' }, [instanceRecord('active')], release)).toThrow(
      expect.objectContaining({ code: 'NO_RUNNING_INSTANCE' }),
    );
  });
});
