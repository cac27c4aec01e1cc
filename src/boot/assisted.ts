/**
 * The assisted installer's iPXE scripts, parsed and rewritten (pure). assisted-service serves
 * two shapes (research/openshift-precache.md §2.1):
 *
 *   #!ipxe                                   #!ipxe
 *   initrd --name initrd <signed initrd URL> chain <script URL>&mac=${net0/mac}
 *   kernel <kernel URL> initrd=initrd coreos.live.rootfs_url=<rootfs URL> … <InfraEnv kargs>
 *   boot
 *
 * The boot script is served to the machine with every kernel argument kept verbatim and only
 * the kernel, initrd and rootfs URLs replaced by edgeboot's own; the redirect is followed by
 * edgeboot, server-side, with the machine's MAC in place of `${net0/mac}`.
 */

export interface AssistedBoot {
  kind: 'boot';
  kernel: { url: string; args: string[] };
  initrds: { name?: string; url: string }[];
  /** The value of `coreos.live.rootfs_url=` among the kernel arguments, if any. */
  rootfsUrl?: string;
}

export type AssistedScript = AssistedBoot | { kind: 'redirect'; url: string } | { kind: 'unsupported'; reason: string };

const HTTP_URL = /^https?:\/\/\S+$/;
const ROOTFS = 'coreos.live.rootfs_url=';
// Control bytes other than tab would let a hub's line break out of the one we write.
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** Parses the hub's answer; anything but the two shapes above is `unsupported`, with why. */
export function parseAssistedScript(text: string): AssistedScript {
  const lines = text
    .replace(/\r\n/g, '\n')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (!/^#!ipxe\s*$/i.test(text.trimStart().split('\n')[0] ?? '')) return { kind: 'unsupported', reason: 'the answer is not an iPXE script (no #!ipxe line)' };
  if (lines.length === 1 && lines[0]?.startsWith('chain ')) {
    const url = lines[0].slice('chain '.length).trim();
    if (!HTTP_URL.test(url)) return { kind: 'unsupported', reason: `chain to ${JSON.stringify(url.slice(0, 80))}, not an http(s) URL` };
    return { kind: 'redirect', url };
  }
  let kernel: AssistedBoot['kernel'] | undefined;
  const initrds: AssistedBoot['initrds'] = [];
  let boot = false;
  for (const line of lines) {
    if (CONTROL.test(line)) return { kind: 'unsupported', reason: 'a control character in the script' };
    const words = line.split(/[ \t]+/);
    const cmd = words[0];
    if (cmd === 'initrd' || cmd === 'imgfetch' || cmd === 'module') {
      let name: string | undefined;
      let i = 1;
      while (words[i]?.startsWith('-')) {
        const opt = words[i] as string;
        if (opt === '--name' || opt === '-n') name = words[(i += 1)];
        else if (opt.startsWith('--name=')) name = opt.slice('--name='.length);
        else return { kind: 'unsupported', reason: `initrd option ${opt}` };
        i++;
      }
      const url = words[i];
      if (url === undefined || !HTTP_URL.test(url) || words.length > i + 1)
        return { kind: 'unsupported', reason: `initrd line ${JSON.stringify(line.slice(0, 80))}` };
      initrds.push({ ...(name !== undefined && { name }), url });
    } else if (cmd === 'kernel' || cmd === 'chain' || cmd === 'imgexec') {
      if (kernel) return { kind: 'unsupported', reason: 'two kernel lines' };
      const url = words[1];
      if (url === undefined || !HTTP_URL.test(url)) return { kind: 'unsupported', reason: `kernel line ${JSON.stringify(line.slice(0, 80))}` };
      kernel = { url, args: words.slice(2) };
    } else if (cmd === 'boot') {
      boot = true;
    } else {
      return { kind: 'unsupported', reason: `iPXE command ${JSON.stringify(cmd)} edgeboot does not rewrite` };
    }
  }
  if (!kernel) return { kind: 'unsupported', reason: 'no kernel line' };
  if (!boot) return { kind: 'unsupported', reason: 'no boot line' };
  const rootfs = kernel.args.find((a) => a.startsWith(ROOTFS))?.slice(ROOTFS.length);
  return { kind: 'boot', kernel, initrds, ...(rootfs !== undefined && rootfs !== '' && { rootfsUrl: rootfs }) };
}

/** The URL the hub's redirect names, for this machine (`${net0/mac}` as iPXE expands it). */
export function redirectUrl(url: string, mac: string): string {
  return url.replace(/\$\{net0\/mac\}/g, mac).replace(/\$\{net0\/mac:hexhyp\}/g, mac.replace(/:/g, '-'));
}

export type ArtifactRole = 'kernel' | 'initrd' | 'rootfs';

/**
 * The lines of the boot script with every artifact URL mapped (`url(original, role, name)`
 * gives edgeboot's), the arguments otherwise as the hub wrote them.
 */
export function rewriteAssistedBoot(s: AssistedBoot, url: (original: string, role: ArtifactRole, name?: string) => string): string[] {
  const args = s.kernel.args.map((a) => (a.startsWith(ROOTFS) && s.rootfsUrl !== undefined ? `${ROOTFS}${url(s.rootfsUrl, 'rootfs')}` : a));
  return [
    ...s.initrds.map((i) => `initrd ${i.name !== undefined ? `--name ${i.name} ` : ''}${url(i.url, 'initrd', i.name)}`),
    `kernel ${url(s.kernel.url, 'kernel')}${args.length > 0 ? ` ${args.join(' ')}` : ''}`,
  ];
}
