/**
 * Human rendering of a `PloyzError` for ployzctl: `CODE: message`, and for a manifest error every
 * problem on its own line as `file:line:col code path: message` (capped; the rest counted), and
 * after a failed deploy what it left behind.
 * Pure: values in, lines out (tested in error-output.test.ts).
 */
import { ERROR_CODES, type ManifestIssue, type PloyzError } from '@ployz/types';

/** Problems printed one per line; the rest become "(and N more)". */
export const MAX_PROBLEM_LINES = 20;

/** The issues of a manifest error as they came over the wire; anything malformed is skipped. */
function issuesOf(err: PloyzError): ManifestIssue[] {
  const issues = err.details?.issues;
  if (!Array.isArray(issues)) return [];
  return issues.filter(
    (i): i is ManifestIssue =>
      typeof i === 'object' &&
      i !== null &&
      typeof i.code === 'string' &&
      typeof i.path === 'string' &&
      typeof i.message === 'string',
  );
}

/** `deploy.toml:4:1 IMAGE_INVALID services[0].image: …`; parts that are unknown are left out. */
export function issueLine(issue: ManifestIssue): string {
  const where = [issue.file, issue.line, issue.column].filter((x) => x !== undefined).join(':');
  return `${where ? `${where} ` : ''}${issue.code} ${issue.path || '(top level)'}: ${issue.message}`;
}

/** What a failed deploy left behind, by the state its error carries (`details.state`). */
function deployStateLines(err: PloyzError): string[] {
  switch (err.details?.state) {
    case 'failed':
      return ['Deploy failed before its first commit: nothing live changed, candidates were removed.'];
    case 'FailedAfterCheckpoint':
      return [
        'Deploy FailedAfterCheckpoint: committed facts are durable and live; see `ployzctl deploy show`.',
      ];
    default:
      return [];
  }
}

export function errorLines(err: PloyzError): string[] {
  const issues = issuesOf(err);
  if (issues.length === 0) return [`${err.code}: ${err.message}`, ...deployStateLines(err)];
  const count = `${issues.length} problem${issues.length === 1 ? '' : 's'}`;
  const out = [`${err.code}: ${ERROR_CODES[err.code].summary} (${count})`];
  for (const issue of issues.slice(0, MAX_PROBLEM_LINES)) out.push(`  ${issueLine(issue)}`);
  if (issues.length > MAX_PROBLEM_LINES) out.push(`  (and ${issues.length - MAX_PROBLEM_LINES} more)`);
  return [...out, ...deployStateLines(err)];
}
