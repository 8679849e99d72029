import { readFile } from 'node:fs/promises';
import { Args, Flags } from '@oclif/core';
import type { MachineInitResult } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import { DaemonCommand, endpointFlag } from '../../daemon-command.ts';
import { machineUpExitCode, machineUpLines } from '../../machine-output.ts';

async function readToken(arg: string | undefined, file: string | undefined): Promise<string> {
  // With piped stdin oclif already hands its text over as the missing argument.
  if (file === '-') return (arg ?? (await readStdin())).trim();
  if ((arg === undefined) === (file === undefined)) {
    throw new PloyzError(
      'INVALID_ARGUMENT',
      'give the token either as the argument or with --token-file (- for stdin), not both',
    );
  }
  return (arg ?? (await readFile(file ?? '', 'utf8'))).trim();
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export default class MachineJoin extends DaemonCommand {
  static override description =
    "Join an installation with a token from `ployzctl machine invite`, on a machine that is not initialised. The issuer verifies the token first (INVITE_INVALID, INVITE_EXPIRED, INVITE_USED change nothing on either machine); then it assigns this machine's subnet and records it, and this machine brings up its data plane and peers with the members.";
  static override examples = [
    '<%= config.bin %> machine join ployz1.eyJp….Q2x…',
    'ssh m1 ployzctl machine invite | <%= config.bin %> machine join --token-file -',
    '<%= config.bin %> machine join --id web-2 --token-file /tmp/invite',
    '<%= config.bin %> machine join --registry 10.0.0.5:5000 --token-file /tmp/invite',
  ];
  static override args = { token: Args.string({ description: 'the invite token', required: false }) };
  static override flags = {
    'token-file': Flags.string({ description: 'read the token from this file (- for stdin)' }),
    id: Flags.string({ description: 'machine id (default: the hostname)' }),
    storage: Flags.string({
      description: 'where volumes live, as for machine init (zfs:<pool>, btrfs:<path>, dir:<path>)',
    }),
    endpoint: endpointFlag(),
    registry: Flags.string({
      description:
        'registry (host[:port]) to pull the data-plane images from, as <registry>/ployz/<component>:<version>; recorded on the machine (PLOYZ_IMAGE_REGISTRY on ployzd overrides it). Default: the images built here',
    }),
  };

  async run(): Promise<MachineInitResult> {
    const { args, flags } = await this.parse(MachineJoin);
    const token = await readToken(args.token, flags['token-file']);
    if (!this.jsonEnabled()) this.log('asking the issuer to accept the invite…');
    const result = await this.client(flags).call('machineJoin', {
      token,
      ...(flags.id !== undefined ? { machine_id: flags.id } : {}),
      ...(flags.storage !== undefined ? { storage: flags.storage } : {}),
      ...(flags.endpoint !== undefined ? { endpoints: flags.endpoint } : {}),
      ...(flags.registry !== undefined ? { registry: flags.registry } : {}),
    });
    if (!this.jsonEnabled()) {
      this.log(`joined installation ${result.machine.installation} as ${result.machine.machine_id}`);
      for (const line of machineUpLines(result)) this.log(line);
    }
    process.exitCode = machineUpExitCode(result) ?? process.exitCode;
    return result;
  }
}
