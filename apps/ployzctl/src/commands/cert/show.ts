import { Args } from '@oclif/core';
import type { CertificateView } from '@ployz/protocol';
import { certDetailLines } from '../../cert-output.ts';
import { DaemonCommand } from '../../daemon-command.ts';

export default class CertShow extends DaemonCommand {
  static override description =
    "Show one hostname's certificate (serial, not before/after, renewal time, issuing directory, the machine that renewed it) and its renewal state: failures in a row, the directory's last error and the next attempt. A hostname no route asks for and with no stored certificate is CERT_UNKNOWN.";
  static override examples = [
    '<%= config.bin %> cert show shop.example.com',
    '<%= config.bin %> cert show shop.example.com --json',
  ];
  static override args = {
    host: Args.string({ description: 'the hostname (as a route names it)', required: true }),
  };

  async run(): Promise<CertificateView> {
    const { args, flags } = await this.parse(CertShow);
    const view = await this.client(flags).call('certShow', { hostname: args.host });
    if (!this.jsonEnabled()) for (const line of certDetailLines(view, new Date())) this.log(line);
    return view;
  }
}
