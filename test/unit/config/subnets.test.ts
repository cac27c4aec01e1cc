/**
 * dhcp.subnets beyond the schema (issue 16 §3): each of these passed `config check` and failed
 * at boot. Through loadConfig, the path `config check` and the start both take.
 */
import t, { type Test } from 'tap';
import { ConfigError } from '../../../src/config/config.js';
import { loadConfig } from '../../../src/config/load.js';
import { subnetProblems } from '../../../src/config/subnets.js';

interface SubnetDoc {
  cidr: string;
  pool?: [string, string];
  router?: string;
  dns?: string[];
}

/** The problems loadConfig reports for these subnets, or [] when it accepts them. */
function problemsOf(subnets: SubnetDoc[]): string[] {
  try {
    loadConfig({ env: { EDGEBOOT_DHCP_SUBNETS: JSON.stringify(subnets) } });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

function refused(t: Test, subnets: SubnetDoc[], expected: string[], what: string): void {
  t.same(problemsOf(subnets), expected, what);
}

const LAB: SubnetDoc = { cidr: '10.77.0.0/24', pool: ['10.77.0.100', '10.77.0.199'], router: '10.77.0.1', dns: ['10.77.0.1'] };

t.test('a sound subnet, and the embedded default, pass', async (t) => {
  t.same(problemsOf([LAB]), []);
  t.same(subnetProblems(loadConfig().config.dhcp.subnets), [], 'the default subnet');
  t.same(problemsOf([{ cidr: '10.77.0.0/24', dns: ['8.8.8.8', '192.0.2.53'] }]), [], 'a dns server may be anywhere');
  t.same(problemsOf([{ cidr: '10.77.0.0/24' }]), [], 'no pool and no router (proxy mode, relayed kargs)');
  t.same(problemsOf([{ cidr: '10.77.0.0/24', pool: ['10.77.0.1', '10.77.0.254'] }]), [], 'a pool of every host address');
  t.same(problemsOf([{ cidr: '10.77.0.0/24', pool: ['10.77.0.50', '10.77.0.50'] }]), [], 'a pool of one address');
  t.same(problemsOf([{ cidr: '10.77.0.4/31', pool: ['10.77.0.4', '10.77.0.5'] }]), [], 'a /31 uses both addresses (RFC 3021)');
  t.same(problemsOf([{ cidr: '10.77.0.9/32', pool: ['10.77.0.9', '10.77.0.9'] }]), [], 'a /32 of one host');
  t.same(problemsOf([LAB, { cidr: '10.77.1.0/24', pool: ['10.77.1.10', '10.77.1.20'] }, { cidr: '10.78.0.0/16' }]), [], 'neighbours that touch, not overlap');
});

t.test('a pool outside its subnet', async (t) => {
  refused(
    t,
    [{ ...LAB, pool: ['10.77.1.100', '10.77.1.199'] }],
    ['dhcp.subnets[0].pool: got [10.77.1.100, 10.77.1.199], expected addresses inside 10.77.0.0/24 (10.77.1.100 and 10.77.1.199 are not)'],
    "both ends outside (the issue's case)",
  );
  refused(
    t,
    [{ ...LAB, pool: ['10.77.0.200', '10.77.1.10'] }],
    ['dhcp.subnets[0].pool: got [10.77.0.200, 10.77.1.10], expected addresses inside 10.77.0.0/24 (10.77.1.10 is not)'],
    'one end outside',
  );
});

t.test('a pool whose start is after its end', async (t) => {
  refused(
    t,
    [{ ...LAB, pool: ['10.77.0.199', '10.77.0.100'] }],
    ['dhcp.subnets[0].pool: got [10.77.0.199, 10.77.0.100], expected the first address of the pool, then the last (the start is after the end)'],
    'reversed',
  );
});

t.test('a pool holding the network or the broadcast address', async (t) => {
  refused(
    t,
    [{ ...LAB, pool: ['10.77.0.0', '10.77.0.199'] }],
    ['dhcp.subnets[0].pool: got [10.77.0.0, 10.77.0.199], expected a range without the network and broadcast addresses of 10.77.0.0/24 (it holds 10.77.0.0)'],
    'network address',
  );
  refused(
    t,
    [{ ...LAB, pool: ['10.77.0.100', '10.77.0.255'] }],
    [
      'dhcp.subnets[0].pool: got [10.77.0.100, 10.77.0.255], expected a range without the network and broadcast addresses of 10.77.0.0/24 (it holds 10.77.0.255)',
    ],
    'broadcast address',
  );
  refused(
    t,
    [{ cidr: '10.77.0.0/30', pool: ['10.77.0.0', '10.77.0.3'] }],
    [
      'dhcp.subnets[0].pool: got [10.77.0.0, 10.77.0.3], expected a range without the network and broadcast addresses of 10.77.0.0/30 ' +
        '(it holds 10.77.0.0 and 10.77.0.3)',
    ],
    'both, in a /30',
  );
});

t.test('a router outside its subnet', async (t) => {
  refused(t, [{ ...LAB, router: '10.77.1.1' }], ['dhcp.subnets[0].router: got "10.77.1.1", expected an address inside 10.77.0.0/24'], 'router');
});

t.test('overlapping subnets name both', async (t) => {
  const overlap = (later: string, earlier: string) => `${later} overlaps ${earlier}; expected subnets that share no address`;
  refused(t, [LAB, { cidr: '10.77.0.0/23' }], [overlap('dhcp.subnets[1].cidr: 10.77.0.0/23', 'dhcp.subnets[0].cidr 10.77.0.0/24')], 'a wider one after');
  refused(t, [{ cidr: '10.0.0.0/8' }, LAB], [overlap('dhcp.subnets[1].cidr: 10.77.0.0/24', 'dhcp.subnets[0].cidr 10.0.0.0/8')], 'a narrower one after');
  const twice = [LAB, { cidr: '10.99.0.0/24' }, { ...LAB, pool: undefined }];
  refused(t, twice, [overlap('dhcp.subnets[2].cidr: 10.77.0.0/24', 'dhcp.subnets[0].cidr 10.77.0.0/24')], 'the same twice');
  t.equal(problemsOf([{ cidr: '0.0.0.0/0' }, LAB, { cidr: '10.77.0.128/25' }]).length, 3, 'every pair, once');
});

t.test('a cidr with host bits set is refused, naming the network address', async (t) => {
  const expected = 'dhcp.subnets[0].cidr: got "10.77.0.5/24", expected a network address with no host bits set, such as 10.77.0.0/24';
  refused(t, [{ cidr: '10.77.0.5/24' }], [expected], 'host bits');
});

t.test("a malformed cidr is the schema's, with no second guess from the subnet checks", async (t) => {
  for (const cidr of ['10.77.0/24', '10.77.0.0/33', '300.1.2.3/8', '10.77.0.0']) {
    refused(t, [{ cidr, router: '10.77.0.1' }], [`dhcp.subnets[0].cidr: got "${cidr}", expected an IPv4 CIDR such as 10.77.0.0/24`], cidr);
  }
});

t.test('every mistake is reported at once, in a file as from the environment', async (t) => {
  const problems = problemsOf([
    { cidr: '10.77.0.0/24', pool: ['10.77.1.100', '10.77.1.199'], router: '10.77.1.1' },
    { cidr: '10.77.0.0/23', pool: ['10.77.0.10', '10.77.0.5'] },
  ]);
  t.equal(problems.length, 4, JSON.stringify(problems));
  t.ok(
    problems.every((p) => /^dhcp\.subnets\[[01]\]\.(cidr|pool|router): /.test(p)),
    'each names its key',
  );
});
