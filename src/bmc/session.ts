/**
 * Logging in to a BMC (DSP0266 "Session management"): a session from the SessionService (POST the
 * Sessions collection with UserName/Password, 201 with X-Auth-Token and a Location to DELETE at the
 * end), else HTTP Basic on every request, as sushy's SessionOrBasicAuth does for BMCs without
 * sessions or that refuse them. A 401 in the middle (the BMC dropped the session: a BMC reboot, an
 * idle timeout, another client deleting it) logs in once more and sends the request again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BmcError } from './types.js';
import { isRecord, type BmcHttp, type HttpMethod, type RedfishAnswer, type RequestOptions } from './http.js';

export const SERVICE_ROOT = '/redfish/v1';
/** 503 Service Unavailable: tries in all, the wait without Retry-After, and the longest wait taken. */
const UNAVAILABLE = { attempts: 3, waitMs: 1000, maxWaitMs: 5000 };
const DEFAULT_SESSIONS = '/redfish/v1/SessionService/Sessions';

type Auth = { kind: 'session'; token: string; location?: string } | { kind: 'basic' };

/** `{"@odata.id": "/x/"}` → "/x": iLO 4 and some older BMCs end their links with a slash. */
export function linkOf(value: unknown): string | undefined {
  const id = isRecord(value) ? value['@odata.id'] : undefined;
  return typeof id === 'string' && id !== '' ? id.replace(/(.)\/+$/, '$1') : undefined;
}

export class RedfishClient {
  private auth: Auth = { kind: 'basic' };
  /** The service root, read without credentials (DSP0266 lets anyone read it). */
  root: Record<string, unknown> = {};
  private sessionsPath: string | undefined;

  constructor(
    readonly http: BmcHttp,
    private readonly credentials: { username: string; password: string },
  ) {
    http.addSecret(credentials.password);
  }

  get authKind(): 'session' | 'basic' {
    return this.auth.kind;
  }

  /** Reads the service root and logs in: a session when the BMC offers them and grants one, else Basic. */
  async open(): Promise<void> {
    const root = await this.http.send('GET', SERVICE_ROOT);
    if (root.status === 200 && isRecord(root.body)) this.root = root.body;
    const links = isRecord(this.root.Links) ? this.root.Links : {};
    // Without a readable root (some BMCs want credentials even for it), try the usual place.
    const offered = root.status !== 200 || this.root.SessionService !== undefined || links.Sessions !== undefined;
    this.sessionsPath = offered ? (linkOf(links.Sessions) ?? DEFAULT_SESSIONS) : undefined;
    if (this.sessionsPath) await this.login();
  }

  /** An authenticated request; a 401 on a session renews it once and sends the request again. */
  async call(method: HttpMethod, path: string, o: RequestOptions = {}): Promise<RedfishAnswer> {
    const answer = await this.sendAvailable(method, path, o);
    if (answer.status !== 401 || this.auth.kind !== 'session') return answer;
    const session = await this.login();
    const renewed = await this.sendAvailable(method, path, o);
    if (renewed.status !== 401 || !session) return renewed;
    // A fresh session refused at once: this BMC's sessions do not work for this request; Basic then.
    await this.dropSession();
    return this.sendAvailable(method, path, o);
  }

  /**
   * 503 means the request was not carried out (RFC 9110 §15.6.4): iDRAC answers it for a while after its
   * own restart ("data sources are unavailable", ironcore-dev/metal-operator#170). Wait (Retry-After,
   * at most UNAVAILABLE.maxWaitMs) and send again, a few times.
   */
  private async sendAvailable(method: HttpMethod, path: string, o: RequestOptions): Promise<RedfishAnswer> {
    for (let attempt = 1; ; attempt++) {
      const answer = await this.http.send(method, path, { ...o, headers: { ...o.headers, ...this.authHeaders() } });
      if (answer.status !== 503 || attempt >= UNAVAILABLE.attempts) return answer;
      const retryAfter = Number(answer.headers['retry-after']);
      const waitMs = Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter * 1000 : UNAVAILABLE.waitMs;
      await sleep(Math.min(waitMs, UNAVAILABLE.maxWaitMs));
    }
  }

  /** An authenticated request that must answer one of `ok`; anything else is a BmcError with the BMC's message. */
  async expect(method: HttpMethod, path: string, ok: number[], o: RequestOptions = {}): Promise<RedfishAnswer> {
    const answer = await this.call(method, path, o);
    if (ok.includes(answer.status)) return answer;
    throw this.failure(method, path, answer);
  }

  /** GET of a resource that must be a JSON object. */
  async getObject(path: string): Promise<{ body: Record<string, unknown>; etag?: string }> {
    const answer = await this.expect('GET', path, [200]);
    if (!isRecord(answer.body)) throw new BmcError('protocol', this.http.scrub(`${this.http.baseUrl}: GET ${path} answered no JSON object`), 200);
    return { body: answer.body, etag: answer.headers.etag };
  }

  failure(method: HttpMethod, path: string, answer: RedfishAnswer): BmcError {
    const error = this.http.answerError(method, path, answer);
    if (error.kind !== 'auth') return error;
    const user = `user "${this.credentials.username}"`;
    // 403 is a known account without the privilege (DSP0266 "Authorization"): ConfigureComponents for the override and resets.
    const hint =
      answer.status === 403
        ? `the BMC denies ${user} this request: the account needs the ConfigureComponents privilege (an Operator or Administrator role)`
        : `the BMC refused ${user} with ${this.auth.kind === 'session' ? 'a session' : 'HTTP Basic'}: check the username and password`;
    return new BmcError('auth', `${error.message} (${hint})`, answer.status);
  }

  /** Deletes the session, if one was made. Never throws: the work is done, a stale session only times out on the BMC. */
  async close(): Promise<void> {
    await this.dropSession();
  }

  private async dropSession(): Promise<void> {
    if (this.auth.kind !== 'session') return;
    const location = this.auth.location;
    const headers = this.authHeaders();
    this.auth = { kind: 'basic' };
    if (!location) return;
    try {
      await this.http.send('DELETE', location, { headers });
    } catch (error) {
      // Unreachable by now: the BMC expires the session itself (SessionService.SessionTimeout).
      if (!(error instanceof BmcError)) throw error;
    }
  }

  private authHeaders(): Record<string, string> {
    if (this.auth.kind === 'session') return { 'X-Auth-Token': this.auth.token };
    const basic = Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64');
    this.http.addSecret(basic);
    return { Authorization: `Basic ${basic}` };
  }

  /** POST the Sessions collection; on refusal (or no token) fall back to Basic, which the next request then proves or refuses. Whether a session was made. */
  private async login(): Promise<boolean> {
    this.auth = { kind: 'basic' };
    if (!this.sessionsPath) return false;
    const answer = await this.http.send('POST', this.sessionsPath, {
      body: { UserName: this.credentials.username, Password: this.credentials.password },
    });
    const token = answer.headers['x-auth-token'];
    if (answer.status < 200 || answer.status > 299 || !token) return false;
    this.http.addSecret(token);
    const location = answer.headers.location ?? linkOf(answer.body);
    this.auth = { kind: 'session', token, ...(location ? { location: new URL(location, this.http.baseUrl).pathname } : {}) };
    return true;
  }
}
