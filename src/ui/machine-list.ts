/** The machines table: its query as the page's URL carries it, read into a store search, and back into links. */
import { isMachineState, type MachineState } from '../machines/state.js';
import { MACHINE_SORTS, type MachineSearch, type MachineSort } from '../store/store.js';

export const PAGE_SIZES = [25, 50, 100, 200] as const;

export interface TableQuery {
  q: string;
  state: MachineState | '';
  profile: string;
  /** `key=value`. */
  label: string;
  sort: MachineSort;
  dir: 'asc' | 'desc';
  page: number;
  size: number;
  /** Rows grouped under a heading per state. */
  group: boolean;
  /** The MAC shown under each hostname. */
  macs: boolean;
}

const text = (v: unknown, max: number): string => (typeof v === 'string' ? v.trim().slice(0, max) : '');

/** Whatever the URL says, a table query that can be run: unknown values fall back to the defaults. */
export function tableQuery(raw: Record<string, unknown>): TableQuery {
  const state = text(raw.state, 20);
  const sort = text(raw.sort, 20);
  const size = Number(raw.size);
  const page = Number(raw.page);
  return {
    q: text(raw.q, 100),
    state: isMachineState(state) ? state : '',
    profile: text(raw.profile, 253),
    label: /^[^=]{1,63}=.{0,63}$/.test(text(raw.label, 130)) ? text(raw.label, 130) : '',
    sort: (MACHINE_SORTS as readonly string[]).includes(sort) ? (sort as MachineSort) : 'hostname',
    dir: raw.dir === 'desc' ? 'desc' : 'asc',
    page: Number.isInteger(page) && page >= 1 && page <= 100_000 ? page : 1,
    size: (PAGE_SIZES as readonly number[]).includes(size) ? size : 50,
    group: raw.group === '1',
    macs: raw.macs === '1',
  };
}

export function searchOf(t: TableQuery): MachineSearch {
  const eq = t.label.indexOf('=');
  return {
    ...(t.state && { state: t.state }),
    ...(t.profile && { profile: t.profile }),
    ...(eq > 0 && { labels: { [t.label.slice(0, eq)]: t.label.slice(eq + 1) } }),
    ...(t.q && { text: t.q }),
    // Grouped by state: state first, the chosen column within each group.
    sort: t.group ? 'state' : t.sort,
    descending: t.dir === 'desc',
    offset: (t.page - 1) * t.size,
    limit: t.size,
  };
}

/** The table's URL with some parameters changed; defaults are left out so links stay short. */
export function tableHref(t: TableQuery, change: Partial<TableQuery> & { fragment?: string } = {}): string {
  const v = { ...t, ...change };
  const p = new URLSearchParams();
  if (v.q) p.set('q', v.q);
  if (v.state) p.set('state', v.state);
  if (v.profile) p.set('profile', v.profile);
  if (v.label) p.set('label', v.label);
  if (v.sort !== 'hostname') p.set('sort', v.sort);
  if (v.dir !== 'asc') p.set('dir', v.dir);
  if (v.page !== 1) p.set('page', String(v.page));
  if (v.size !== 50) p.set('size', String(v.size));
  if (v.group) p.set('group', '1');
  if (v.macs) p.set('macs', '1');
  if (v.fragment !== undefined) p.set('fragment', v.fragment);
  const qs = p.toString();
  return qs ? `/ui/machines?${qs}` : '/ui/machines';
}

/** A column header's link: sorts by it, or flips the order when it already sorts. */
export function sortHref(t: TableQuery, sort: MachineSort): string {
  return tableHref(t, { sort, dir: t.sort === sort && t.dir === 'asc' ? 'desc' : 'asc', page: 1 });
}
