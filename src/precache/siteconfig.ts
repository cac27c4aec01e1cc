import { stringify } from 'yaml';

/** The upstream repositories an OpenShift install pulls from (research §4.1), mirrored by default. */
export const DEFAULT_SOURCES = [
  'quay.io/openshift-release-dev/ocp-release',
  'quay.io/openshift-release-dev/ocp-v4.0-art-dev',
  'registry.redhat.io/multicluster-engine',
];

export interface SiteconfigOptions {
  /** edgeboot's address as the machines reach it: `host:port`. */
  mirror: string;
  sources: string[];
  /** The partition's GPT name; `data` is what the stock hooks look for. */
  partlabel: string;
}

/**
 * What the hub needs, beside the stock precaching hooks, for machines precached by edgeboot:
 * the installer must keep the partition (`--save-partlabel`), and the cluster and the
 * discovery image must pull through edgeboot's `/v2/` (an ImageDigestMirrorSet, the same as
 * install-config `imageDigestSources`, and a `registries.conf` for the InfraEnv's
 * `mirrorRegistryRef` ConfigMap). Pure: the CLI prints it.
 */
export function renderSiteconfig(o: SiteconfigOptions): string {
  const mirrorOf = (source: string) => `${o.mirror}/${source}`;
  const installerArgs = JSON.stringify(['--save-partlabel', o.partlabel]);
  const registriesConf = o.sources
    .map(
      (s) =>
        `[[registry]]\n  location = "${s}"\n  [[registry.mirror]]\n    location = "${mirrorOf(s)}"\n    insecure = true\n    pull-from-mirror = "digest-only"\n`,
    )
    .join('\n');
  const idms = {
    apiVersion: 'config.openshift.io/v1',
    kind: 'ImageDigestMirrorSet',
    metadata: { name: 'edgeboot' },
    spec: { imageDigestMirrors: o.sources.map((s) => ({ source: s, mirrors: [mirrorOf(s)], mirrorSourcePolicy: 'AllowContactingSource' })) },
  };
  const configMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'edgeboot-mirror', namespace: '<the InfraEnv namespace>' },
    data: { 'registries.conf': registriesConf },
  };
  return [
    '# ClusterInstance / SiteConfig: on every node precached by edgeboot, keep its partition',
    '# (besides the stock ignitionConfigOverride hooks, extract-ai.sh and extract-ocp.sh):',
    stringify({ nodes: [{ installerArgs }] }).trimEnd(),
    '',
    '# The cluster pulls through edgeboot (the same sources go into install-config imageDigestSources);',
    `# list ${o.mirror} in image.config.openshift.io registrySources.insecureRegistries: the mirror is plain HTTP.`,
    '---',
    stringify(idms).trimEnd(),
    '',
    "# The discovery image too: reference this ConfigMap from the InfraEnv's spec.mirrorRegistryRef.",
    '---',
    stringify(configMap, { blockQuote: 'literal' }).trimEnd(),
    '',
  ].join('\n');
}
