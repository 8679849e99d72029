import type { CertificateList } from '@ployz/protocol';
import { certLines } from '../../cert-output.ts';
import { DaemonCommand } from '../../daemon-command.ts';

export default class CertLs extends DaemonCommand {
  static override description =
    'List the certificates of routes with tls = "auto" (automatic HTTPS, ACME HTTP-01): state (pending, valid, failing), serial, when each expires and is renewed (at two thirds of its lifetime), failures in a row and the last error. A failing renewal keeps the stored certificate serving until it expires.';
  static override examples = ['<%= config.bin %> cert ls', '<%= config.bin %> cert ls --json'];

  async run(): Promise<CertificateList> {
    const { flags } = await this.parse(CertLs);
    const list = await this.client(flags).call('certList', {});
    if (!this.jsonEnabled()) for (const line of certLines(list, new Date())) this.log(line);
    return list;
  }
}
