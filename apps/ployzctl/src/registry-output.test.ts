/** What the preview and a deploy print about images from a registry, and `registry ls` rows. */
import { describe, expect, it } from 'vitest';
import { imageEventLine, imagePlanLine } from './deploy-output.ts';
import { REGISTRY_HEADER, registryRow } from './registry-output.ts';

const image = '127.0.0.1:5000/team/app:1.2';

describe('image lines for registry images', () => {
  it('a pull and an unavailable image name the machine, and say what the deploy would do', () => {
    const base = { image, machine: 'm2', image_id: null, size_bytes: null };
    expect(
      imagePlanLine({
        ...base,
        action: 'pull',
        detail: 'not on m2: pulled from 127.0.0.1:5000 at the probe step',
      }),
    ).toBe(`${image} on m2: pull, not on m2: pulled from 127.0.0.1:5000 at the probe step`);
    expect(
      imagePlanLine({
        ...base,
        action: 'unavailable',
        detail: 'not on m2, and m2 cannot pull it: unreachable',
      }),
    ).toBe(
      `${image} on m2: unavailable, not on m2, and m2 cannot pull it: unreachable; the deploy would fail IMAGE_PULL_FAILED before writing anything`,
    );
  });

  it('pull events: pulling, progress with a percentage, pulled', () => {
    const e = { type: 'image' as const, machine: 'm2', image, image_id: null, bytes: 0, total_bytes: 2000 };
    expect(imageEventLine({ ...e, action: 'pulling', detail: 'from 127.0.0.1:5000' }).trim()).toBe(
      `image     ${image} → m2: pulling: from 127.0.0.1:5000`,
    );
    expect(imageEventLine({ ...e, action: 'progress', bytes: 1000 }).trim()).toBe(
      `image     ${image} → m2: 1.0 kB of ~2.0 kB (50 %)`,
    );
    expect(imageEventLine({ ...e, action: 'pulled', detail: '2.0 kB in 0.5 s' }).trim()).toBe(
      `image     ${image} → m2: pulled: 2.0 kB in 0.5 s`,
    );
  });

  it('registry ls rows line up under the header and never hold a password', () => {
    const row = registryRow({
      host: '127.0.0.1:5000',
      username: 'ci',
      updated_at: '2026-12-03T07:00:00.000Z',
      updated_by: 'm1',
    });
    expect(row.indexOf('ci')).toBe(REGISTRY_HEADER.indexOf('USERNAME'));
    expect(row.endsWith(' m1')).toBe(true);
  });
});
