import { describe, expect, it } from 'vitest';
import { parseManifest } from '../src/index.ts';

const manifest = (volume: string) => `namespace = "app"
[[services]]
name = "db"
image = "ployz/hello:latest"
mounts = [{ volume = "data", target = "/data" }]
[[volumes]]
${volume}
`;

describe('volume declarations', () => {
  it('owner, mode and keep_snapshots normalise to numbers', () => {
    const m = parseManifest(
      manifest('name = "data"\nowner = "10001:10002"\nmode = "0750"\nkeep_snapshots = 3\nquota = "1GiB"'),
      { filename: 'deploy.toml' },
    );
    expect(m.volumes).toEqual([
      {
        name: 'data',
        quota_bytes: 1024 ** 3,
        scope: 'single',
        owner: { uid: 10001, gid: 10002 },
        mode: 0o750,
        keep_snapshots: 3,
      },
    ]);
  });

  it('without them: copy-up (null owner and mode) and the last 10 snapshots kept', () => {
    const m = parseManifest(manifest('name = "data"'), { filename: 'deploy.toml' });
    expect(m.volumes[0]).toMatchObject({ owner: null, mode: null, keep_snapshots: 10, quota_bytes: null });
  });

  it('a three-digit mode is octal too', () => {
    const m = parseManifest(manifest('name = "data"\nmode = "700"'), { filename: 'deploy.toml' });
    expect(m.volumes[0]?.mode).toBe(0o700);
  });
});
