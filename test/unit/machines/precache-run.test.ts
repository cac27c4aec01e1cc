/** A machine's precache run (src/machines/precache-run.ts): boots, heartbeats, progress, the end. */
import t from 'tap';
import type { PrecacheProgress } from '../../../src/machines/model.js';
import { MACHINE_STATES } from '../../../src/machines/state.js';
import { bootLoopReason, finished, heartbeat, heartbeatLapsed, precacheBooted, progressReport } from '../../../src/machines/precache-run.js';

const T0 = '2025-03-01T10:00:00.000Z';
const T1 = '2025-03-01T10:05:00.000Z';

/** A run some way into its downloads, frozen so that a function writing into it throws. */
function midRun(over: Partial<PrecacheProgress> = {}): Readonly<PrecacheProgress> {
  return Object.freeze({
    boots: 2,
    step: 'download',
    message: 'downloading images-0001.tgz',
    filesDone: 3,
    filesTotal: 9,
    bytesDone: 12345,
    bytesTotal: 99999,
    disk: '/dev/sda',
    bundle: '0123456789abcdef',
    startedAt: T0,
    lastHeartbeatAt: T0,
    ...over,
  });
}

const freshRun = (now: string): PrecacheProgress => ({
  boots: 1,
  step: 'booting',
  filesDone: 0,
  filesTotal: 0,
  bytesDone: 0,
  bytesTotal: 0,
  startedAt: now,
  lastHeartbeatAt: now,
});

t.test('precacheBooted: a boot from registered starts a new run', async (t) => {
  t.strictSame(precacheBooted(undefined, 'registered', T1), freshRun(T1), 'no run before');
  t.strictSame(
    precacheBooted(midRun({ outcome: 'failed', finishedAt: T0 }), 'registered', T1),
    freshRun(T1),
    "an old run's counters, outcome and message are gone",
  );
  for (const state of MACHINE_STATES.filter((s) => s !== 'precaching')) {
    t.strictSame(precacheBooted(midRun(), state, T1), freshRun(T1), `from ${state}: a new run`);
  }
  t.strictSame(precacheBooted(undefined, 'precaching', T1), freshRun(T1), 'precaching without a run: a new one');
});

t.test('precacheBooted: a boot from precaching is one boot more of the same run', async (t) => {
  const before = midRun();
  const after = precacheBooted(before, 'precaching', T1);
  const { message: _message, ...kept } = before;
  t.strictSame(after, { ...kept, boots: before.boots + 1, step: 'booting', lastHeartbeatAt: T1 }, 'counters, disk, bundle and start kept');
  t.notOk('message' in after, "the last boot's message is dropped");
  t.equal(after.startedAt, T0, 'the run still started at its first boot');
  t.equal(before.boots, 2, 'the old progress is left alone');
});

t.test('bootLoopReason: at maxBoots boots of a precaching machine, the next would be a loop', async (t) => {
  for (const maxBoots of [1, 3, 10]) {
    t.equal(
      bootLoopReason({ state: 'precaching', precacheProgress: midRun({ boots: maxBoots - 1 }) }, maxBoots),
      undefined,
      `${maxBoots - 1} of ${maxBoots}: another boot is fine`,
    );
    for (const boots of [maxBoots, maxBoots + 4]) {
      const reason = bootLoopReason({ state: 'precaching', precacheProgress: midRun({ boots, step: 'partition' }) }, maxBoots);
      t.match(reason, /^boot loop: /, `${boots} of ${maxBoots}: a boot loop`);
      t.match(reason, `${boots + 1} precache boots`, 'counts the boot it would be');
      t.match(reason, `precache.maxBoots ${maxBoots}`, 'names the setting');
      t.match(reason, 'the last step reported was partition', 'names the last step');
    }
  }
});

t.test('bootLoopReason: only a precaching run counts', async (t) => {
  for (const state of MACHINE_STATES.filter((s) => s !== 'precaching')) {
    t.equal(bootLoopReason({ state, precacheProgress: midRun({ boots: 50 }) }, 3), undefined, `${state}: an old run's boots do not count`);
  }
  t.equal(bootLoopReason({ state: 'precaching' }, 1), undefined, 'precaching without progress: no boots yet');
});

t.test('heartbeatLapsed: silence longer than the limit fails a precaching machine, the limit itself does not', async (t) => {
  const progress = midRun({ lastHeartbeatAt: T0, step: 'download' });
  const at = (ms: number): Date => new Date(Date.parse(T0) + ms);
  for (const seconds of [30, 900]) {
    t.equal(heartbeatLapsed({ state: 'precaching', precacheProgress: progress }, at(0), seconds), undefined, `${seconds}: just heard from`);
    t.equal(
      heartbeatLapsed({ state: 'precaching', precacheProgress: progress }, at(seconds * 1000), seconds),
      undefined,
      `${seconds}: exactly at the limit is not lapsed`,
    );
    const reason = heartbeatLapsed({ state: 'precaching', precacheProgress: progress }, at(seconds * 1000 + 1), seconds);
    t.type(reason, 'string', `${seconds}: one millisecond over is lapsed`);
    t.match(reason, `precache.heartbeatSeconds ${seconds}`, 'names the setting');
    t.match(reason, `for ${seconds} s`, 'names the silence');
    t.match(reason, `the last step reported was download at ${T0}`, 'names the last step and when');
  }
});

t.test('heartbeatLapsed: only a precaching machine with a run can lapse', async (t) => {
  const longAgo = midRun({ lastHeartbeatAt: '2000-01-01T00:00:00.000Z' });
  for (const state of MACHINE_STATES.filter((s) => s !== 'precaching')) {
    t.equal(heartbeatLapsed({ state, precacheProgress: longAgo }, new Date(T1), 30), undefined, state);
  }
  t.equal(heartbeatLapsed({ state: 'precaching' }, new Date(T1), 30), undefined, 'precaching without progress');
});

t.test('progressReport keeps the well-formed fields', async (t) => {
  t.strictSame(
    progressReport({ step: 'download', filesDone: 1, filesTotal: 9, bytesDone: 0, bytesTotal: Number.MAX_SAFE_INTEGER }, 'downloading a.tgz'),
    { step: 'download', filesDone: 1, filesTotal: 9, bytesDone: 0, bytesTotal: Number.MAX_SAFE_INTEGER, message: 'downloading a.tgz' },
    'all of them',
  );
  t.strictSame(progressReport(undefined, undefined), {}, 'nothing');
  t.strictSame(progressReport(undefined, 'hello'), { message: 'hello' }, 'a message alone');
  t.strictSame(progressReport({}, ''), { message: '' }, 'an empty message is a message');
  t.strictSame(progressReport({ bytesDone: 7 }, undefined), { bytesDone: 7 }, 'one counter alone');
});

t.test('progressReport ignores counters that are not non-negative safe integers', async (t) => {
  const bad: unknown[] = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '5', null, true, [], {}];
  for (const value of bad) {
    for (const key of ['filesDone', 'filesTotal', 'bytesDone', 'bytesTotal']) {
      t.strictSame(
        progressReport({ step: 'download', [key]: value }, undefined),
        { step: 'download' },
        `${key}: ${typeof value === 'number' ? String(value) : JSON.stringify(value)}`,
      );
    }
  }
});

t.test('progressReport takes a step only in the step pattern', async (t) => {
  for (const step of ['download', 'check-disk', 'a', 'step2', `a${'b'.repeat(31)}`]) {
    t.strictSame(progressReport({ step }, undefined), { step }, `kept: ${step}`);
  }
  for (const step of ['', 'Download', '2step', '-x', 'has space', 'under_score', 'download\n', `a${'b'.repeat(32)}`, 42, null]) {
    t.strictSame(progressReport({ step }, undefined), {}, `ignored: ${JSON.stringify(step)}`);
  }
});

t.test('progressReport ignores what is not a progress field', async (t) => {
  // These would overwrite edgeboot's own bookkeeping if a heartbeat spread them in.
  const data = {
    boots: 0,
    outcome: 'precached',
    finishedAt: T1,
    startedAt: T1,
    lastHeartbeatAt: T1,
    disk: '/dev/sdz',
    bundle: 'x',
    file: 'a.tgz',
    resumedFrom: 0,
  };
  t.strictSame(progressReport(data, undefined), {});
});

t.test('progressReport cuts the message to 512 characters', async (t) => {
  const exact = 'm'.repeat(512);
  t.equal(progressReport(undefined, exact).message, exact, '512 kept whole');
  const long = `${'x'.repeat(512)}TAIL`;
  t.equal(progressReport(undefined, long).message, long.slice(0, 512), 'the rest cut off');
  t.equal(progressReport(undefined, long).message?.length, 512);
});

t.test('heartbeat: the time, and the report when there is one', async (t) => {
  const before = midRun();
  t.strictSame(heartbeat(before, T1), { ...before, lastHeartbeatAt: T1 }, 'without a report only the time moves');
  const report = progressReport({ step: 'verify', filesDone: 4, bytesDone: 23456 }, 'verified b.tgz');
  t.strictSame(
    heartbeat(before, T1, report),
    { ...before, step: 'verify', filesDone: 4, bytesDone: 23456, message: 'verified b.tgz', lastHeartbeatAt: T1 },
    'the report moves its fields, the rest stays',
  );
  t.equal(before.lastHeartbeatAt, T0, 'the old progress is left alone');
});

t.test('finished: outcome and end time at the step reached; a message only when given', async (t) => {
  const before = midRun();
  const { message: _message, ...kept } = before;
  t.strictSame(
    finished(before, T1, 'precached', 'every file verified'),
    { ...kept, message: 'every file verified', outcome: 'precached', finishedAt: T1, lastHeartbeatAt: T1 },
    'precached with a message, the step kept',
  );
  const failed = finished(before, T1, 'failed');
  t.strictSame(failed, { ...kept, outcome: 'failed', finishedAt: T1, lastHeartbeatAt: T1 }, 'failed without a message');
  t.notOk('message' in failed, "the last progress message is not passed off as the failure's");
  t.equal(finished(before, T1, 'failed', '').message, '', 'an empty message is kept');
  t.equal(before.message, 'downloading images-0001.tgz', 'the old progress is left alone');
});
