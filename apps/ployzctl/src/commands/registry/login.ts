import { text } from 'node:stream/consumers';
import { Args, Flags } from '@oclif/core';
import type { RegistryLoginResult } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import { DaemonCommand } from '../../daemon-command.ts';
import { registryLoginLine } from '../../registry-output.ts';

export default class RegistryLogin extends DaemonCommand {
  static override description =
    "Store a registry's username and password for the installation, sealed under the installation key like secret env values (never printed, never in a deploy record). Every machine that pulls an image naming this host uses them. ployzd asks the registry first (through its Docker engine) unless --no-verify.";
  static override examples = [
    'printf %s "$TOKEN" | <%= config.bin %> registry login registry.example.com --username ci --password-stdin',
    '<%= config.bin %> registry login 127.0.0.1:5000 --username ci --password-stdin < password.txt',
    '<%= config.bin %> registry login registry.internal:5000 -u ci --password-stdin --no-verify',
  ];
  static override args = {
    host: Args.string({
      description: 'the registry host as images name it (registry.example.com, 127.0.0.1:5000)',
      required: true,
    }),
  };
  static override flags = {
    username: Flags.string({ char: 'u', description: 'username', required: true }),
    'password-stdin': Flags.boolean({
      description:
        'read the password from stdin (the only way: a flag would show it in ps and the shell history)',
      default: false,
    }),
    'no-verify': Flags.boolean({
      description: 'store without asking the registry (one only the other machines reach)',
      default: false,
    }),
  };

  async run(): Promise<RegistryLoginResult> {
    const { args, flags } = await this.parse(RegistryLogin);
    if (!flags['password-stdin']) {
      throw new PloyzError('INVALID_ARGUMENT', 'pass the password on stdin: --password-stdin', {
        details: { flag: '--password-stdin' },
      });
    }
    const password = (await text(process.stdin)).replace(/\r?\n$/, '');
    if (password === '') throw new PloyzError('INVALID_ARGUMENT', 'the password read from stdin is empty');
    const result = await this.client(flags).call('registryLogin', {
      host: args.host,
      username: flags.username,
      password,
      verify: !flags['no-verify'],
      actor: null,
    });
    if (!this.jsonEnabled()) this.log(registryLoginLine(result));
    return result;
  }
}
