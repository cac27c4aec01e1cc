/**
 * The upstream allow-list (src/registry/allow.ts) and tag-list paging (src/registry/tags.ts),
 * pure: prefixes by path segment, hosts case-insensitive with ports, tricks refused; the
 * config key with its default and environment variable; `n`/`last` pages and the Link header.
 */
import t from 'tap';
import { loadConfig } from '../../../src/config/load.js';
import { normaliseHost, parseAllowRule, parseAllowRules, upstreamAllowed, type AllowRule } from '../../../src/registry/allow.js';
import { parseTagsPath } from '../../../src/registry/reference.js';
import { nextPageLink, pageTags, parseTagQuery, sortTags, upstreamNextPage } from '../../../src/registry/tags.js';

const rules = (...texts: string[]): AllowRule[] => parseAllowRules(texts.map((text) => ({ text, from: 'test' })));

t.test('a namespace prefix matches whole path segments only', async (t) => {
  const r = rules('quay.io/openshift', 'registry.redhat.io/multicluster-engine');
  t.ok(upstreamAllowed(r, 'quay.io', 'openshift/origin-cli'));
  t.ok(upstreamAllowed(r, 'quay.io', 'openshift/a/b/c'), 'deeper repositories under the namespace');
  t.ok(upstreamAllowed(r, 'quay.io', 'openshift'), 'a repository named exactly as the rule');
  t.notOk(upstreamAllowed(r, 'quay.io', 'openshift-evil/x'), 'a longer segment with the same start');
  t.notOk(upstreamAllowed(r, 'quay.io', 'openshiftx/x'));
  t.notOk(upstreamAllowed(r, 'quay.io', 'other/openshift/x'), 'the prefix is at the start');
  t.notOk(upstreamAllowed(r, 'registry.redhat.io', 'multicluster-engine-evil/agent'));
  t.ok(upstreamAllowed(r, 'registry.redhat.io', 'multicluster-engine/assisted-installer-agent-rhel8'));
  t.notOk(upstreamAllowed(r, 'quay.io.evil.example', 'openshift/x'), 'a host with the allowed one as its start');
  t.notOk(upstreamAllowed(r, 'evil.quay.io', 'openshift/x'), 'a subdomain');
  t.notOk(upstreamAllowed(r, 'evil.example', 'quay.io/openshift/x'), 'the allowed name as a path elsewhere');
});

t.test('a rule may name one repository', async (t) => {
  const r = rules('quay.io/openshift-release-dev/ocp-release');
  t.ok(upstreamAllowed(r, 'quay.io', 'openshift-release-dev/ocp-release'), 'a rule naming a whole repository allows it');
  t.notOk(upstreamAllowed(r, 'quay.io', 'openshift-release-dev/ocp-v4.0-art-dev'));
});

t.test('hosts: case-insensitive, ports honoured', async (t) => {
  const r = rules('Registry.Lab:5000', 'QUAY.io/openshift-release-dev', 'plain.example', '[::1]:5001/ns');
  t.ok(upstreamAllowed(r, 'registry.lab:5000', 'any/thing'), 'a host rule allows every repository');
  t.ok(upstreamAllowed(r, 'REGISTRY.LAB:5000', 'any/thing'), 'upper case host');
  t.ok(upstreamAllowed(r, 'registry.lab:05000', 'any/thing'), 'a port with a leading zero is the same port');
  t.notOk(upstreamAllowed(r, 'registry.lab', 'any/thing'), 'no port is not port 5000');
  t.notOk(upstreamAllowed(r, 'registry.lab:5001', 'any/thing'), 'another port');
  t.ok(upstreamAllowed(r, 'quay.io', 'openshift-release-dev/ocp-release'));
  t.ok(upstreamAllowed(r, 'Quay.IO', 'openshift-release-dev/ocp-release'));
  t.notOk(upstreamAllowed(r, 'quay.io:8443', 'openshift-release-dev/ocp-release'), 'a port the rule does not name');
  t.notOk(upstreamAllowed(r, 'plain.example:443', 'x/y'), 'an explicit port is not the rule without one');
  t.ok(upstreamAllowed(r, '[::1]:5001', 'ns/a'), 'IPv6 literal with a port');
  t.notOk(upstreamAllowed(r, '[::1]:5001', 'other/a'));
  t.equal(normaliseHost('Quay.IO:0443'), 'quay.io:443');
  t.equal(normaliseHost('quay.io:0'), undefined, 'port 0');
  t.equal(normaliseHost('quay.io:65536'), undefined, 'a port past 65535');
  t.equal(normaliseHost('quay.io.'), undefined, 'a trailing dot');
  t.equal(normaliseHost('-quay.io'), undefined);
});

t.test('dot segments, encodings and odd names are never allowed', async (t) => {
  const r = rules('quay.io/openshift', 'registry.lab:5000');
  for (const repository of [
    'openshift/../evil',
    'openshift/./x',
    'openshift/%2e%2e/evil',
    'openshift%2fx',
    'openshift//x',
    'openshift/x/',
    '/openshift/x',
    'openshift/X',
    'openshift/x y',
    'openshift/x\n',
    '',
  ]) {
    t.notOk(upstreamAllowed(r, 'quay.io', repository), JSON.stringify(repository));
  }
  for (const host of ['quay.io/openshift', 'quay.io%2eevil', 'quay.io@evil.example', 'quay.io:5000:1', 'user:pw@quay.io', '', 'quay.io ', 'quay.io\t']) {
    t.notOk(upstreamAllowed(r, host, 'openshift/x'), `host ${JSON.stringify(host)}`);
  }
  t.notOk(upstreamAllowed(r, 'registry.lab:5000', '../x'), 'a whole-host rule still needs a valid name');
});

t.test('rules are checked when they are read', async (t) => {
  t.same(parseAllowRule('quay.io/openshift/'), { host: 'quay.io', path: ['openshift'] }, 'a trailing slash');
  t.same(parseAllowRule('LAB:5000'), { host: 'lab:5000', path: [] });
  for (const bad of ['quay.io/../x', 'quay.io/Openshift', 'https://quay.io', 'quay.io:99999', 'quay io', '', '/openshift']) {
    t.match(parseAllowRule(bad), { error: String }, JSON.stringify(bad));
  }
  t.throws(() => rules('quay.io/ok', 'bad host'), /test: "bad host"/, 'the first bad rule names where it came from');
});

t.test('registry.allowedUpstreams: the default and EDGEBOOT_REGISTRY_ALLOWED_UPSTREAMS', async (t) => {
  const { config } = loadConfig({ env: {} });
  const defaults = rules(...config.registry.allowedUpstreams);
  for (const [host, repository] of [
    ['quay.io', 'openshift-release-dev/ocp-release'],
    ['quay.io', 'openshift-release-dev/ocp-v4.0-art-dev'],
    ['registry.redhat.io', 'multicluster-engine/assisted-installer-rhel8'],
    ['registry.redhat.io', 'rhacm2/acm-operator-bundle'],
    ['registry.redhat.io', 'openshift4/ose-ptp-operator'],
    ['registry.redhat.io', 'redhat/redhat-operator-index'],
    ['quay.io', 'edge-infrastructure/assisted-installer-agent'],
  ] as const) {
    t.ok(upstreamAllowed(defaults, host, repository), `default allows ${host}/${repository}`);
  }
  for (const [host, repository] of [
    ['quay.io', 'evil/x'],
    ['docker.io', 'library/busybox'],
    ['ghcr.io', 'openshift/x'],
    ['127.0.0.2', 'ns/x'],
    ['registry.redhat.io', 'ubi9/ubi'],
  ] as const) {
    t.notOk(upstreamAllowed(defaults, host, repository), `default refuses ${host}/${repository}`);
  }
  const fromEnv = loadConfig({ env: { EDGEBOOT_REGISTRY_ALLOWED_UPSTREAMS: 'registry.lab:5000, quay.io/acme' } }).config;
  t.same(fromEnv.registry.allowedUpstreams, ['registry.lab:5000', 'quay.io/acme'], 'comma-separated');
  t.same(loadConfig({ env: { EDGEBOOT_REGISTRY_ALLOWED_UPSTREAMS: '' } }).config.registry.allowedUpstreams, [], 'empty: only upstreams and insecureRegistries');
  t.throws(
    () => loadConfig({ env: { EDGEBOOT_REGISTRY_ALLOWED_UPSTREAMS: 'quay.io/a b' } }),
    /registry\.allowedUpstreams\[0\]: got "quay\.io\/a b", expected a registry host\[:port\] or host\/namespace prefix/,
  );
});

t.test('tags/list paths', async (t) => {
  t.same(parseTagsPath('quay.io/openshift-release-dev/ocp-release/tags/list'), { upstream: 'quay.io', repository: 'openshift-release-dev/ocp-release' });
  t.match(parseTagsPath('quay.io/tags/list'), { error: 'NAME_INVALID' }, 'an upstream needs a repository after it');
  t.match(parseTagsPath('quay.io/%2e%2e/x/tags/list'), { error: 'NAME_INVALID' });
  t.equal(parseTagsPath('quay.io/ns/a/tags/list/x'), undefined);
  t.equal(parseTagsPath('quay.io/ns/a/manifests/v1'), undefined);
});

t.test('tag pages: n, last, and the next link', async (t) => {
  const all = sortTags(['v2', 'v10', 'latest', 'v1', 'v2', '-bad', '4.14.0-x86_64']);
  t.same(all, ['4.14.0-x86_64', 'latest', 'v1', 'v10', 'v2'], 'lexical, duplicates and non-tags dropped');
  t.same(pageTags(all, undefined, undefined), { tags: all }, 'no n: everything');
  t.same(pageTags(all, 2, undefined), { tags: ['4.14.0-x86_64', 'latest'], next: 'latest' });
  t.same(pageTags(all, 2, 'latest'), { tags: ['v1', 'v10'], next: 'v10' });
  t.same(pageTags(all, 2, 'v10'), { tags: ['v2'] }, 'the last page has no next');
  t.same(pageTags(all, 3, 'v1'), { tags: ['v10', 'v2'] }, 'exactly the rest: no next');
  t.same(pageTags(all, undefined, 'v1'), { tags: ['v10', 'v2'] }, 'last without n');
  t.same(pageTags(all, 2, 'u'), { tags: ['v1', 'v10'], next: 'v10' }, 'last need not be a tag of the list');
  t.same(pageTags(all, 0, undefined), { tags: [] }, 'n=0: an empty page, no link');
  t.same(pageTags(all, 10, 'zzz'), { tags: [] });
  t.equal(nextPageLink('quay.io/ns/a', 2, 'v1.0+x'), '</v2/quay.io/ns/a/tags/list?n=2&last=v1.0%2Bx>; rel="next"');
  t.same(parseTagQuery({ n: '5', last: 'v1' }), { n: 5, last: 'v1' });
  t.same(parseTagQuery({}), {});
  for (const n of ['-1', 'abc', '1.5', '', '9999999999']) t.match(parseTagQuery({ n }), { error: String }, `n=${n}`);
  t.match(parseTagQuery({ n: ['1', '2'] }), { error: String }, 'n twice');
  t.match(parseTagQuery({ last: ['a', 'b'] }), { error: String }, 'last twice');
});

t.test("an upstream's next link is followed on the same origin and repository only", async (t) => {
  const origin = 'http://127.0.0.1:5000';
  t.equal(upstreamNextPage('</v2/ns/a/tags/list?n=2&last=b>; rel="next"', origin, 'ns/a'), '/v2/ns/a/tags/list?n=2&last=b');
  t.equal(
    upstreamNextPage('<http://127.0.0.1:5000/v2/ns/a/tags/list?last=b>; rel=next', origin, 'ns/a'),
    '/v2/ns/a/tags/list?last=b',
    'absolute on the same origin',
  );
  t.equal(upstreamNextPage(['<x>; rel="prev"', '</v2/ns/a/tags/list?last=c>; rel="next"'], origin, 'ns/a'), '/v2/ns/a/tags/list?last=c', 'several links');
  t.equal(upstreamNextPage('<http://127.0.0.2/v2/ns/a/tags/list?last=b>; rel="next"', origin, 'ns/a'), undefined, 'another host');
  t.equal(upstreamNextPage('<//127.0.0.2/v2/ns/a/tags/list>; rel="next"', origin, 'ns/a'), undefined, 'a scheme-relative link to another host');
  t.equal(upstreamNextPage('</v2/ns/b/tags/list?last=b>; rel="next"', origin, 'ns/a'), undefined, 'another repository');
  t.equal(upstreamNextPage('</v2/ns/a/../b/tags/list>; rel="next"', origin, 'ns/a'), undefined, 'dot segments resolve to another path');
  t.equal(upstreamNextPage('</v2/ns/a/tags/list?last=b>; rel="prev"', origin, 'ns/a'), undefined, 'not next');
  t.equal(upstreamNextPage(undefined, origin, 'ns/a'), undefined);
});
