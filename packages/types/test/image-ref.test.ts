/** Image references as Docker reads them, the registry host, and the pull decision. Pure. */
import { describe, expect, it } from 'vitest';
import {
  type ManifestIssue,
  PULL_POLICIES,
  parseImageRef,
  parseManifest,
  pullDecision,
  registryOf,
} from '../src/index.ts';

describe('parseImageRef', () => {
  it.each([
    ['ployz/hello', null, 'ployz/hello', null, null],
    ['ployz/hello:latest', null, 'ployz/hello', 'latest', null],
    ['postgres:16', null, 'postgres', '16', null],
    ['127.0.0.1:5000/team/app:1.2', '127.0.0.1:5000', 'team/app', '1.2', null],
    ['registry.example.com/x:y', 'registry.example.com', 'x', 'y', null],
    ['localhost/app', 'localhost', 'app', null, null],
    ['localhost:5000/app', 'localhost:5000', 'app', null, null],
    ['[::1]:5000/app:1', '[::1]:5000', 'app', '1', null],
    ['docker.io/library/postgres:16', 'docker.io', 'library/postgres', '16', null],
    ['my-registry:5000/a/b/c', 'my-registry:5000', 'a/b/c', null, null],
    ['a__b/c.d-e_f', null, 'a__b/c.d-e_f', null, null],
    [`reg.example/app@sha256:${'a'.repeat(64)}`, 'reg.example', 'app', null, `sha256:${'a'.repeat(64)}`],
    [`reg.example/app:1.0@sha256:${'b'.repeat(64)}`, 'reg.example', 'app', '1.0', `sha256:${'b'.repeat(64)}`],
  ])('%s → registry %s, repository %s, tag %s', (text, registry, repository, tag, digest) => {
    expect(parseImageRef(text)).toEqual({ ok: true, ref: { registry, repository, tag, digest } });
  });

  it.each([
    ['', /empty/],
    ['ployz hello', /whitespace/],
    ['Ployz/hello', /capital letters/],
    ['reg.example/Team/app', /"Team" has capital letters/],
    ['ployz//hello', /empty path component/],
    ['ployz/hello/', /empty path component/],
    ['reg.example/', /no repository after the registry/],
    ['127.0.0.1:0/app', /registry port "0"/],
    ['127.0.0.1:99999/app', /registry port "99999"/],
    ['reg_bad.example/app', /registry host "reg_bad.example"/],
    ['-reg.example/app', /registry host/],
    ['ployz/hello:-x', /tag "-x"/],
    [`ployz/hello:${'t'.repeat(129)}`, /tag/],
    ['ployz/hello@sha256:abc', /not a digest/],
    [':tag', /names a repository/],
    ['app-/x', /"app-" is not lowercase letters/],
    [`${'a'.repeat(256)}:1`, /longer than 255/],
  ])('%s is refused: %s', (text, reason) => {
    const parsed = parseImageRef(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });

  it('registryOf is null for a local name, a Docker Hub short name and an unparsable reference', () => {
    expect(registryOf('ployz/hello')).toBeNull();
    expect(registryOf('postgres:16')).toBeNull();
    expect(registryOf('Not A Ref')).toBeNull();
    expect(registryOf('127.0.0.1:5000/team/app:1.2')).toBe('127.0.0.1:5000');
  });
});

describe('pullDecision', () => {
  const remote = '127.0.0.1:5000/team/app:1.2';

  it.each([
    // image, policy, held → decision
    [remote, undefined, false, 'pull'],
    [remote, undefined, true, 'present'],
    [remote, 'if_not_present', false, 'pull'],
    [remote, 'if_not_present', true, 'present'],
    [remote, 'always', false, 'pull'],
    [remote, 'always', true, 'pull'],
    [remote, 'never', false, 'mesh'],
    [remote, 'never', true, 'mesh'],
    ['ployz/hello:latest', undefined, false, 'mesh'],
    ['ployz/hello:latest', undefined, true, 'mesh'],
    ['postgres:16', undefined, false, 'mesh'],
  ] as const)('%s, policy %s, held %s → %s', (image, policy, held, decision) => {
    expect(pullDecision(image, policy, held)).toBe(decision);
  });
});

describe('the manifest: pull_policy', () => {
  const manifest = (image: string, policy?: string) =>
    `namespace = "demo"\n[[services]]\nname = "a"\nimage = "${image}"\n${policy === undefined ? '' : `pull_policy = "${policy}"\n`}`;

  it('is omitted from the spec for the default, so revisions written before it keep their ids', () => {
    const plain = parseManifest(manifest('127.0.0.1:5000/team/app:1.2'), { format: 'toml' });
    const explicit = parseManifest(manifest('127.0.0.1:5000/team/app:1.2', 'if_not_present'), {
      format: 'toml',
    });
    expect(plain.services[0]).not.toHaveProperty('pull_policy');
    expect(explicit.services[0]).toEqual(plain.services[0]);
  });

  it.each(PULL_POLICIES.filter((p) => p !== 'if_not_present'))('%s is kept in the spec', (policy) => {
    const m = parseManifest(manifest('registry.example.com/x:y', policy), { format: 'toml' });
    expect(m.services[0]?.pull_policy).toBe(policy);
  });

  it('on an image without a registry host is refused with a message that says what to write', () => {
    let issues: ManifestIssue[] = [];
    try {
      parseManifest(manifest('ployz/hello', 'never'), { format: 'toml', filename: 'deploy.toml' });
    } catch (e) {
      issues = (e as { details: { issues: ManifestIssue[] } }).details.issues;
    }
    expect(issues).toEqual([
      expect.objectContaining({
        code: 'PULL_POLICY_NO_REGISTRY',
        path: 'services[0].pull_policy',
        line: 5,
        message: expect.stringContaining('name the registry in the image'),
      }),
    ]);
  });

  it('an invalid image says which part is wrong', () => {
    let issues: ManifestIssue[] = [];
    try {
      parseManifest(manifest('reg.example/Team/app:1'), { format: 'toml' });
    } catch (e) {
      issues = (e as { details: { issues: ManifestIssue[] } }).details.issues;
    }
    expect(issues).toEqual([
      expect.objectContaining({
        code: 'IMAGE_INVALID',
        path: 'services[0].image',
        message: expect.stringMatching(/"Team" has capital letters/),
      }),
    ]);
  });
});
