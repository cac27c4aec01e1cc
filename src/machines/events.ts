import type { Transition } from './state.js';

/**
 * Event types that move a machine's state when a machine (or an admin) posts them to
 * `POST /api/v1/machines/{mac}/events`. Every other type is recorded on the timeline only. A Map:
 * a posted type is any lower-case word, `constructor` included.
 */
type ToTransition = (message: string | undefined) => Transition;

export const TRANSITION_EVENTS: ReadonlyMap<string, ToTransition> = new Map<string, ToTransition>([
  ['precache-done', () => ({ kind: 'precache-succeeded' })],
  ['precache-failed', (m) => ({ kind: 'error', reason: m ?? 'the precache job reported a failure' })],
  ['install-done', () => ({ kind: 'install-done' })],
  ['failed', (m) => ({ kind: 'error', reason: m ?? 'the machine reported a failure' })],
]);

export const EVENT_TYPE_PATTERN = '^[a-z][a-z0-9.-]{0,63}$';
