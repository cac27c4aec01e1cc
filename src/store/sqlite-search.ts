import type Database from 'better-sqlite3';
import type { Machine } from '../machines/model.js';
import { checkSearchWindow, searchText } from './search.js';
import type { MachineRepository, MachineSearch, MachineSearchPage, MachineSort } from './store.js';

/** `%`, `_` and the escape itself taken literally in `LIKE ? ESCAPE '\'`, anywhere in the value. */
function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

const afterDot = (text: string) => `substr(${text}, instr(${text}, '.') + 1)`;

/** A dotted quad as its number: CAST takes the longest integer prefix of the text, so each octet in turn. */
function ipv4Number(column: string): string {
  const rests = [column, afterDot(column), afterDot(afterDot(column)), afterDot(afterDot(afterDot(column)))];
  return rests.map((rest) => `CAST(${rest} AS INTEGER)`).reduce((high, low) => `(${high}) * 256 + ${low}`);
}

/** A value a sort orders by (NULL: missing), and how it compares when not as itself. */
interface SortKey {
  value: string;
  compared?: (column: string) => string;
}

/** What each sort orders by, before the primary MAC. */
const SORT_KEYS: Record<MachineSort, readonly SortKey[]> = {
  hostname: [{ value: "json_extract(doc, '$.hostname')" }],
  ip: [{ value: "json_extract(doc, '$.ip')", compared: ipv4Number }],
  mac: [],
  state: [{ value: 'state' }],
  profile: [{ value: 'profile' }],
  firmware: [{ value: "json_extract(doc, '$.observed.platform')" }, { value: "json_extract(doc, '$.observed.arch')" }],
  power: [{ value: "json_extract(doc, '$.bmcStatus.powerState')" }],
  lastSeen: [{ value: "json_extract(doc, '$.observed.lastSeenAt')" }],
};

/**
 * The matches with their sort keys, read once (each key extracted from the JSON once per row,
 * however often the sort compares it), then a page of their MACs and how many there are.
 */
function pageQuery(filter: string, sort: MachineSort, descending: boolean): string {
  const keys = SORT_KEYS[sort];
  const direction = descending ? ' DESC' : '';
  const columns = keys.map((key, i) => `, ${key.value} AS key${i}`).join('');
  // NULLs after values ascending; descending reverses every term, the tie-break included.
  const order = keys.flatMap((key, i) => [`key${i} IS NULL${direction}`, `${key.compared?.(`key${i}`) ?? `key${i}`}${direction}`]);
  return `WITH matches AS MATERIALIZED (SELECT mac${columns} FROM machines${filter})
    SELECT mac, (SELECT count(*) FROM matches) AS total FROM matches
    ORDER BY ${[...order, `mac${direction}`].join(', ')} LIMIT @limit OFFSET @offset`;
}

// One pattern for hostname, IP and serials; the MAC forms of the text beside it (NULL: not a MAC).
const TEXT_MATCH = `(json_extract(doc, '$.hostname') LIKE @text ESCAPE '\\' OR json_extract(doc, '$.ip') LIKE @text ESCAPE '\\'
  OR json_extract(doc, '$.observed.serial') LIKE @text ESCAPE '\\' OR json_extract(doc, '$.inventory.serial') LIKE @text ESCAPE '\\'
  OR EXISTS (SELECT 1 FROM machine_macs x WHERE x.machine = machines.mac
    AND (x.mac LIKE @text ESCAPE '\\' OR x.mac LIKE @colonMac ESCAPE '\\' OR replace(x.mac, ':', '') LIKE @hexMac ESCAPE '\\')))`;

type Parameters = Record<string, string | number | null>;

/** The machines table's search (store.ts MachineSearch), in SQL: filters, sort and window. */
export function sqliteMachineSearch(db: Database.Database): Pick<MachineRepository, 'searchMachines'> {
  const docByMac = db.prepare<[string], { doc: string }>('SELECT doc FROM machines WHERE mac = ?');
  const pages = new Map<string, Database.Statement<[Parameters], { mac: string; total: number }>>();
  const counts = new Map<string, Database.Statement<[Parameters], { total: number }>>();

  /** One prepared statement per shape (filters given × sort): a few dozen at most. */
  const prepared = <Row>(cache: Map<string, Database.Statement<[Parameters], Row>>, sql: string) => {
    let statement = cache.get(sql);
    if (!statement) {
      statement = db.prepare<[Parameters], Row>(sql);
      cache.set(sql, statement);
    }
    return statement;
  };

  const search = db.transaction((s: MachineSearch): MachineSearchPage => {
    const where: string[] = [];
    const params: Parameters = {};
    if (s.state !== undefined) {
      where.push('state = @state');
      params.state = s.state;
    }
    if (s.profile !== undefined) {
      where.push('profile = @profile');
      params.profile = s.profile;
    }
    const labels = Object.entries(s.labels ?? {});
    // A JSON path cannot quote a double quote, and no label key holds one (the API's label pattern).
    if (labels.some(([key]) => key.includes('"'))) return { machines: [], total: 0 };
    labels.forEach(([key, value], i) => {
      where.push(`json_extract(doc, @labelPath${i}) = @labelValue${i}`);
      params[`labelPath${i}`] = `$.labels."${key}"`;
      params[`labelValue${i}`] = value;
    });
    const text = searchText(s.text);
    if (text) {
      where.push(TEXT_MATCH);
      params.text = containsPattern(text.needle);
      params.colonMac = text.colonMac === undefined ? null : containsPattern(text.colonMac);
      params.hexMac = text.hexMac === undefined ? null : containsPattern(text.hexMac);
    }
    const filter = where.length ? ` WHERE ${where.join(' AND ')}` : '';
    const rows = prepared(pages, pageQuery(filter, s.sort ?? 'mac', s.descending ?? false)).all({ ...params, limit: s.limit, offset: s.offset });
    const machines = rows.flatMap((r) => {
      const row = docByMac.get(r.mac);
      return row ? [JSON.parse(row.doc) as Machine] : [];
    });
    const countAll = () => prepared(counts, `SELECT count(*) AS total FROM machines${filter}`).get(params)?.total ?? 0;
    // An empty page carries no total: count apart, unless nothing can have matched.
    const total = rows[0]?.total ?? (s.offset === 0 && s.limit > 0 ? 0 : countAll());
    return { machines, total };
  });

  return {
    async searchMachines(s: MachineSearch) {
      checkSearchWindow(s);
      // One read transaction: the page, its documents and the count see the same rows.
      return search(s);
    },
  };
}
