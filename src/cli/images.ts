import { Command, InvalidArgumentError } from 'commander';
import { readFileSync } from 'node:fs';
import type { PullJob } from '../registry/puller.js';
import { api, ClientError } from './client.js';
import { bytes, clientOptions, visible } from './format.js';

const POLL_MS = 500;

function readFile(what: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ClientError(`cannot read the ${what} ${path}: ${(err as Error).message}`);
  }
}

/** One line: images done of all, bytes from upstream, rate, and an ETA from the images left. */
export function jobLine(j: PullJob): string {
  const done = j.images.fetched + j.images.cached + j.images.failed;
  const total = Math.max(j.images.total, done);
  const width = 24;
  const filled = total > 0 ? Math.round((width * done) / total) : 0;
  const rate = j.seconds > 0 ? j.bytes.upstream / j.seconds : 0;
  const eta = done > 0 && done < total ? `, ETA ${Math.ceil((j.seconds * (total - done)) / done)} s` : '';
  const what = j.images.total === 0 ? (j.release ? 'resolving the release' : 'starting') : `${done}/${total} images`;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${what}, ${bytes(j.bytes.upstream)} from upstream, ${bytes(Math.round(rate))}/s${eta}`;
}

/** The closing summary the issue names: images, bytes, deduplication, time, what was left out and what failed. */
export function jobSummary(j: PullJob): string[] {
  const lines = [
    ...(j.release ? [`release ${j.release.ref}: ${j.release.version} (${j.release.architecture}), ${j.release.digest}`] : []),
    `images: ${j.images.total} in all, ${j.images.fetched} fetched, ${j.images.cached} already cached, ${j.images.failed} failed${j.excluded.length ? `, ${j.excluded.length} left out by the filter` : ''}`,
    `blobs: ${j.blobs.total} distinct, ${j.blobs.fetched} fetched, ${j.blobs.cached} already cached`,
    `bytes: ${bytes(j.bytes.upstream)} from upstream, ${bytes(j.bytes.deduplicated)} deduplicated, ${bytes(j.bytes.total)} in all the images`,
    `time: ${j.seconds.toFixed(1)} s`,
  ];
  // Names and errors come from upstream registries: one line each, controls shown escaped.
  for (const e of j.excluded) lines.push(visible(`left out: ${e.name} (${e.ref}) by /${e.pattern}/`));
  for (const f of j.failures) lines.push(visible(`failed: ${f.ref}: ${f.error}`));
  if (j.error) lines.push(visible(`the job failed: ${j.error}`));
  return lines;
}

const positive = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('a whole number from 1 to 64');
  return n;
};

export function imagesCommand(print: (s: string) => void): Command {
  const cmd = new Command('images').description("the server's registry mirror");
  cmd
    .command('pull')
    .description(
      'pull a release (its component images) and more images into the mirror, with progress and a summary; run it again to finish an interrupted pull',
    )
    .option('--release <ref>', 'a release image, e.g. quay.io/openshift-release-dev/ocp-release:4.14.0-x86_64')
    .option('--img <ref>', 'another image (repeatable): assisted-installer, multicluster-engine, …', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--filter <file>', 'patterns of images to leave out (YAML `patterns:` list, or one regular expression per line)')
    .option('--parallel <n>', 'images pulled at once', positive, 4)
    .option('--arch <arch>', "the release's architecture", 'amd64')
    .option('--pull-secret <file>', "a pull secret for this pull, tried before the server's registry.pullSecret")
    .action(async (opts: { release?: string; img: string[]; filter?: string; parallel: number; arch: string; pullSecret?: string }, self: Command) => {
      const o = clientOptions(self);
      if (!opts.release && opts.img.length === 0) throw new ClientError('name a release (--release) or images (--img)');
      const body = {
        ...(opts.release && { release: opts.release }),
        images: opts.img,
        parallel: opts.parallel,
        architecture: opts.arch,
        ...(opts.filter && { filter: readFile('filter', opts.filter) }),
        ...(opts.pullSecret && { pullSecret: readFile('pull secret', opts.pullSecret) }),
      };
      let job = await api<PullJob>(o, 'POST', '/api/v1/images/jobs', body);
      const tty = process.stderr.isTTY;
      let lastLine = 0;
      while (job.state === 'running') {
        await new Promise((r) => setTimeout(r, POLL_MS));
        job = await api<PullJob>(o, 'GET', `/api/v1/images/jobs/${job.id}`, undefined, 10_000);
        const line = jobLine(job);
        if (tty) process.stderr.write(`\r\x1b[K${line}`);
        else if (Date.now() - lastLine > 5_000) {
          lastLine = Date.now();
          process.stderr.write(`${line}\n`);
        }
      }
      if (tty) process.stderr.write('\r\x1b[K');
      if (o.json) print(JSON.stringify(job, null, 2));
      else for (const l of jobSummary(job)) print(l);
      if (job.state === 'failed' || job.images.failed > 0) process.exitCode = 1;
    });
  return cmd;
}
