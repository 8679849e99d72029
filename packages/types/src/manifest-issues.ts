/**
 * Per-issue codes for manifest validation. A `MANIFEST_INVALID` / `MANIFEST_SYNTAX` PloyzError
 * carries `details.issues: ManifestIssue[]` listing every problem found, each with one of these
 * stable codes and a path like `services[1].routes[0].http.hostnames[0]`. Messages never contain
 * an env value.
 */
export const MANIFEST_ISSUE_CODES = {
  // Syntax
  SYNTAX: 'the text is not valid TOML or JSON',
  FORMAT_UNKNOWN: 'the manifest format cannot be told from the file name',
  // Structure
  REQUIRED: 'a required field is missing',
  TYPE_INVALID: 'a field has the wrong type',
  UNKNOWN_FIELD: 'a field is not part of the manifest schema',
  KEY_RESERVED: 'a key is "__proto__", which cannot be used as a name',
  VALUE_INVALID: 'a value is not one of the allowed values or formats',
  OUT_OF_RANGE: 'a number is outside its allowed range',
  LENGTH_INVALID: 'a string or list is too short or too long',
  NAME_NOT_DNS_LABEL: 'a name is not a DNS label (lowercase letters, digits and -, at most 63)',
  PORT_NAME_INVALID:
    'a port name is not lowercase letters, digits and - (at most 15, starting with a letter)',
  ENV_NAME_INVALID: 'an env variable name is not [A-Za-z_][A-Za-z0-9_]*',
  ENV_VALUE_INVALID: 'an env value is not a string, number or boolean',
  IMAGE_INVALID: 'an image reference is not [registry/]repository[:tag][@digest] as Docker reads it',
  DURATION_INVALID: 'a duration is not like "500ms", "10s", "1m30s" or "2h"',
  SIZE_INVALID: 'a size is not like "512MiB", "10GiB" or a byte count',
  HOSTNAME_INVALID: 'a route hostname is not a valid DNS name',
  ROUTE_PATH_INVALID: 'a route path does not start with / or contains spaces, ? or #',
  ROUTE_KIND_INVALID: 'a route must have exactly one of http or tcp',
  READINESS_KIND_INVALID: 'readiness must have exactly one of http, tcp or exec',
  MOUNT_KIND_INVALID: 'a mount must have exactly one of volume or tmpfs',
  MOUNT_TARGET_INVALID: 'a mount target is not an absolute path',
  PLACEMENT_INVALID: 'placement combines global mode with a replica count',
  // Cross-field
  SERVICE_NAME_DUPLICATE: 'two services have the same name',
  VOLUME_NAME_DUPLICATE: 'two volumes have the same name',
  PHASE_ID_DUPLICATE: 'two phases have the same id',
  PHASE_ID_RESERVED: 'a phase id is reserved',
  PORT_REF_UNKNOWN: 'a route or readiness check names a port the service does not declare',
  PORT_REF_REQUIRED: 'a route or readiness check must name a port because the service has none or several',
  PORT_PROTOCOL_MISMATCH: 'an http or tcp route or check points at a udp port',
  ROUTE_DUPLICATE: 'two routes claim the same hostname and path, or the same tcp listen port',
  ROUTE_PORT_RESERVED: 'a tcp route listens on a port the gateway or DNS already uses',
  PULL_POLICY_NO_REGISTRY:
    'a service sets pull_policy but its image names no registry host (a local image, or sent over the mesh)',
  TLS_AUTO_WILDCARD: 'a route with tls = "auto" names a wildcard hostname (HTTP-01 cannot issue those)',
  VOLUME_REF_UNKNOWN: 'a mount or phase names a volume that is not declared',
  VOLUME_SCOPE_CONFLICT: 'a single-scope volume backs a global or multi-replica service, or several services',
  MOUNT_TARGET_DUPLICATE: 'two mounts of one service have the same target',
  SERVICE_REF_UNKNOWN: 'a phase names a service that is not declared',
  PHASE_REF_UNKNOWN: 'a phase is ordered after a phase that is not declared',
  PHASE_ITEM_DUPLICATE: 'a service or volume is listed in more than one phase',
  PHASE_CYCLE: 'phases are ordered in a cycle',
} as const;

export type ManifestIssueCode = keyof typeof MANIFEST_ISSUE_CODES;

export interface ManifestIssue {
  code: ManifestIssueCode;
  /** e.g. `services[1].routes[0].http.hostnames[0]`; empty for the whole document. */
  path: string;
  message: string;
  /** Source file name when known. */
  file?: string;
  /** 1-based line and column in the source text, when known. */
  line?: number;
  column?: number;
}

export type PathSegment = string | number;

const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Formats `['services', 1, 'routes', 0, 'http']` as `services[1].routes[0].http`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (IDENT.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
