import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_SOURCES, renderSiteconfig } from '../precache/siteconfig.js';

const hostPort = (v: string): string => {
  if (!/^[A-Za-z0-9.-]+(:[0-9]{1,5})?$/.test(v)) throw new InvalidArgumentError('host or host:port, as the machines reach edgeboot');
  return v;
};

export function siteconfigCommand(print: (s: string) => void): Command {
  return new Command('siteconfig')
    .description("what the hub needs beside the stock precaching hooks: installerArgs that keep the partition, and the mirror snippets for edgeboot's /v2/")
    .requiredOption('--mirror <host:port>', "edgeboot's address as the machines reach it, e.g. 10.77.0.1:8080", hostPort)
    .option(
      '--source <repo>',
      'an upstream repository to mirror (repeatable; default: the OpenShift release and multicluster-engine ones)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option('--partlabel <name>', "the partition's GPT name", 'data')
    .action((opts: { mirror: string; source: string[]; partlabel: string }) => {
      print(renderSiteconfig({ mirror: opts.mirror, sources: opts.source.length > 0 ? opts.source : DEFAULT_SOURCES, partlabel: opts.partlabel }).trimEnd());
    });
}
