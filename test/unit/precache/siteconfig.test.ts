/** `edgeboot siteconfig` (src/precache/siteconfig.ts): each document parses back, registries.conf is TOML. */
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_SOURCES, renderSiteconfig } from '../../../src/precache/siteconfig.js';

t.test('installerArgs keep the partition; the mirror snippets name edgeboot', async (t) => {
  const text = renderSiteconfig({ mirror: '10.77.0.1:8080', sources: DEFAULT_SOURCES, partlabel: 'data' });
  const docs = parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);
  t.equal(docs.length, 3);
  const nodes = docs[0]?.nodes as { installerArgs: string }[];
  t.same(JSON.parse(nodes[0]?.installerArgs ?? '[]'), ['--save-partlabel', 'data'], 'installerArgs is the JSON list the BMH annotation takes');
  const idms = docs[1] as { kind: string; spec: { imageDigestMirrors: { source: string; mirrors: string[] }[] } };
  t.equal(idms.kind, 'ImageDigestMirrorSet');
  t.same(
    idms.spec.imageDigestMirrors.map((m) => [m.source, m.mirrors[0]]),
    DEFAULT_SOURCES.map((s) => [s, `10.77.0.1:8080/${s}`]),
  );
  const conf = (docs[2] as { data: { 'registries.conf': string } }).data['registries.conf'];
  // Python's own TOML parser (Debian's python3 has tomllib) reads it as containers-registries.conf(5) means it.
  const parsed = JSON.parse(
    execFileSync('python3', ['-c', 'import sys, tomllib, json; print(json.dumps(tomllib.loads(sys.stdin.read())))'], { input: conf, encoding: 'utf8' }),
  ) as { registry: { location: string; mirror: { location: string; insecure: boolean; 'pull-from-mirror': string }[] }[] };
  t.same(
    parsed.registry.map((r) => [r.location, r.mirror[0]?.location, r.mirror[0]?.insecure, r.mirror[0]?.['pull-from-mirror']]),
    DEFAULT_SOURCES.map((s) => [s, `10.77.0.1:8080/${s}`, true, 'digest-only']),
  );
});
