/** A DHCP lease as full mode records it (src/dhcp keeps the pools; the store keeps the journal). */
export type LeaseState = 'offered' | 'bound' | 'declined';

export interface Lease {
  ip: string;
  /** Empty for a declined (quarantined) address. */
  mac: string;
  state: LeaseState;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  hostname?: string;
}
