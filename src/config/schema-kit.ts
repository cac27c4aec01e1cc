/**
 * The building blocks of the config schema (schema.ts). Every key carries two texts: `title`
 * says what the key does (the first column of docs/configuration-reference.md) and
 * `description` what it accepts, a short noun phrase that doubles as the "expected …" half of a
 * validation error (load.ts), so keep it one.
 */
import { Type, type TSchema, type TUnsafe } from 'typebox';

/** The two texts of a key, then whatever else its schema says (default, bounds). */
export interface KeyText {
  title: string;
  description: string;
}

/** A section of the file: a mapping of known keys, `{}` when absent so that every key takes its default. */
export const section = <P extends Record<string, TSchema>>(title: string, properties: P) =>
  Type.Object(properties, { additionalProperties: false, default: {}, title });

export const listen = (title: string, port: number) =>
  Type.String({
    pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[0-9A-Za-z.-]*):[0-9]{1,5}$',
    title,
    description: `host:port, e.g. 0.0.0.0:${port} or [::]:${port}`,
    default: `0.0.0.0:${port}`,
  });

export const integer = (text: KeyText, minimum: number, maximum: number | undefined, defaultValue: number) =>
  Type.Integer({ minimum, ...(maximum !== undefined && { maximum }), ...text, default: defaultValue });

export const flag = (text: KeyText, defaultValue: boolean) => Type.Boolean({ ...text, default: defaultValue });

/** One of a few words: `{ type: 'string', enum }`, so that the type of an override is known (load.ts) and Ajv reports one line. */
export const word = <const W extends readonly string[]>(words: W, text: KeyText, defaultValue: W[number]): TUnsafe<W[number]> =>
  Type.Unsafe<W[number]>({ type: 'string', enum: words, ...text, default: defaultValue });

export const strings = (text: KeyText, defaultValue: string[], item: { minLength?: number; pattern?: string; description?: string } = { minLength: 1 }) =>
  Type.Array(Type.String(item), { ...text, default: defaultValue });

/** Printable ASCII of at least 16 characters: what an admin or read token may be. */
export const token = () => Type.String({ minLength: 16, pattern: '^[\\x21-\\x7e]+$' });

/** 0 to 255 without leading zeros, as ajv's ipv4 format reads an address. */
export const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
export const ipv4 = (title?: string) =>
  Type.String({ format: 'ipv4', ...(title !== undefined && { title }), description: 'an IPv4 address such as 10.77.0.1' });

/**
 * A byte count or a size with a unit. `oneOf` rather than TypeBox's `anyOf`: load.ts reports a
 * oneOf failure as one line, and reads an override of a oneOf key as a count or a size.
 */
export const byteSize = (title: string, defaultValue: number | string, description = 'a byte count, or a size such as 200GiB or 512MiB') =>
  Type.Unsafe<number | string>({
    title,
    description,
    oneOf: [
      { type: 'integer', minimum: 0 },
      { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?\\s*([KkMmGgTt][Ii]?[Bb]|[Bb])?$' },
    ],
    default: defaultValue,
  });
