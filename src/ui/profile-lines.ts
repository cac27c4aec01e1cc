/** A profile's boot as iPXE-like lines with its placeholders kept, for the profiles page. */
import type { Profile } from '../profiles/profile.js';
import type { Template } from '../profiles/template.js';

const text = (t: Template): string =>
  t.map((p) => (p.kind === 'text' ? p.text : p.kind === 'value' ? `{{ ${p.name} }}` : `{{ artifacts.${p.name} }}`)).join('');

export function bootLines(p: Profile): string[] {
  const b = p.boot;
  if (!b) return p.flow ? [`# flow: precache with ${p.flow.precache ?? '(the reservation says)'}, install with ${p.flow.install}`] : [];
  if (b.kind === 'local') return ['exit  # boot from the local disk'];
  if (b.kind === 'chain') return [`chain ${text(b.url)}`];
  return [`kernel ${b.kernel} ${text(b.args)}`.trim(), ...b.initrds.map((i) => `initrd ${i}`), 'boot'];
}
