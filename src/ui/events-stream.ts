/**
 * `/ui/events`: one Server-Sent Events stream per open dashboard, fed by the timeline feed (the
 * events the store commits). Changes are coalesced per stream and sent at most every
 * `flushMs`, so a boot storm costs each dashboard one message per interval, not one per event.
 * A message names machines and event types only: no event data, nothing a viewer may not see.
 */
import type { FastifyInstance } from 'fastify';
import type { TimelineChange, TimelineFeed } from '../machines/timeline-feed.js';

export interface EventStreamOptions {
  feed: TimelineFeed;
  /** Streams open at once; past it a new one gets 503 (each holds a socket and a timer). */
  maxStreams: number;
  flushMs: number;
  /** A comment line this often keeps proxies from closing an idle stream. */
  heartbeatMs: number;
}

/**
 * Bytes a stream may have waiting in its socket's buffer: a dashboard that stopped reading (a
 * laptop asleep, a stalled proxy) is ended past this, not buffered for without end. The page's
 * EventSource opens a new stream when it wakes.
 */
export const MAX_UNSENT_BYTES = 1024 * 1024;

/** What one message carries: the machines that changed, their new states, the event types appended. */
interface Batch {
  machines: Record<string, { state?: string; deleted?: boolean; lastEventId?: number; types: string[] }>;
}

export function eventStreamRoute(app: FastifyInstance, o: EventStreamOptions): void {
  let open = 0;
  const ends = new Set<() => void>();
  // A stream never goes idle, so closing the server would wait for it: end them all first.
  app.addHook('preClose', async () => {
    for (const end of ends) end();
  });
  app.get('/ui/events', async (req, reply) => {
    if (open >= o.maxStreams) return reply.code(503).header('retry-after', '30').type('text/plain').send('too many dashboards are open');
    open++;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 3000\n\n');
    let batch: Batch | undefined;
    const send = (text: string): void => {
      if (res.writableLength > MAX_UNSENT_BYTES) {
        req.log.info({ unsent: res.writableLength }, 'dashboard stream ended: its client stopped reading');
        end();
        return;
      }
      res.write(text);
    };
    const flush = (): void => {
      if (!batch) return;
      send(`event: change\ndata: ${JSON.stringify(batch)}\n\n`);
      batch = undefined;
    };
    const onChange = (c: TimelineChange): void => {
      batch ??= { machines: {} };
      const m = (batch.machines[c.mac] ??= { types: [] });
      if (c.state !== undefined) m.state = c.state;
      if (c.deleted === true) m.deleted = true;
      for (const e of c.events) {
        m.lastEventId = e.id;
        if (m.types.length < 20 && !m.types.includes(e.type)) m.types.push(e.type);
      }
    };
    const unsubscribe = o.feed.subscribe(onChange);
    const flusher = setInterval(flush, o.flushMs);
    const heartbeat = setInterval(() => send(': keep-alive\n\n'), o.heartbeatMs);
    const close = (): void => {
      if (!ends.delete(end)) return;
      unsubscribe();
      clearInterval(flusher);
      clearInterval(heartbeat);
      open--;
    };
    const end = (): void => {
      close();
      res.end();
    };
    ends.add(end);
    req.raw.once('close', close);
  });
}
