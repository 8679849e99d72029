import { describe, expect, it } from 'vitest';
import { eventRow } from './event-output.ts';

const AT = '2026-11-22T00:00:00.000Z';

describe('eventRow', () => {
  it('prints seq, time, type, namespace/service/instance @machine and deploy', () => {
    expect(
      eventRow({
        seq: 12,
        type: 'instance_upserted',
        at: AT,
        namespace: 'shop',
        service: 'web',
        instance: 'web-0-a',
        machine: 'm1',
        deploy_id: 'dep-1',
      }),
    ).toBe(`    12  ${AT}  instance_upserted   shop/web/web-0-a @m1  dep-1`);
  });

  it('falls back to the machine, then to -, and shows - without a deploy', () => {
    const none = { namespace: null, service: null, instance: null, machine: null };
    expect(
      eventRow({ ...none, seq: 1, type: 'machine_upserted', at: AT, machine: 'm1', deploy_id: null }),
    ).toBe(`     1  ${AT}  machine_upserted    machine m1  -`);
    expect(
      eventRow({
        ...none,
        seq: 2,
        type: 'instance_removed',
        at: AT,
        instance: 'web-0-z',
        deploy_id: 'dep-2',
      }),
    ).toBe(`     2  ${AT}  instance_removed    web-0-z  dep-2`);
  });
});
