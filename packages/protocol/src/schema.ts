/**
 * A small schema description for JSON messages, and the one validator that reads them. The protocol package has no
 * runtime dependencies (DESIGN.md), so control messages are described here rather than with a schema library: a
 * schema says a value's type and its limits (named in limits.ts), `check` refuses anything else with a message that
 * names the field and what was expected, and `Static<typeof schema>` is the TypeScript type of what it accepts.
 *
 * Messages: `<field> must be <expected>` (wrong type, out of range, not matching) or `<field> is longer than <max>
 * characters`. Fields a schema does not know are dropped from the result; `__proto__` and friends are plain keys.
 */

export interface StringSchema {
  readonly kind: 'string';
  readonly max: number;
  /** At least this many characters (1: non-empty). */
  readonly min?: number;
  readonly pattern?: RegExp;
  /** What a refusal says was expected, when not "a string" / "a non-empty string". */
  readonly expect?: string;
}
export interface IntegerSchema {
  readonly kind: 'integer';
  readonly min: number;
  readonly max: number;
  readonly expect?: string;
}
export interface NumberSchema {
  readonly kind: 'number';
  readonly min: number;
  readonly max: number;
  readonly expect?: string;
}
export interface BooleanSchema {
  readonly kind: 'boolean';
}
/** true or false on the wire; only `true` is kept (an absent flag and `false` read the same). */
export interface FlagSchema {
  readonly kind: 'flag';
}
export interface EnumSchema<V extends string = string> {
  readonly kind: 'enum';
  readonly values: readonly V[];
  readonly expect?: string;
}
export interface ArraySchema<I extends Schema = Schema> {
  readonly kind: 'array';
  readonly items: I;
  readonly min: number;
  readonly max: number;
  readonly expect?: string;
}
export interface ObjectSchema<F extends Fields = Fields> {
  readonly kind: 'object';
  readonly fields: F;
}
/** Any JSON value, passed on untouched (the result of a reply, read by whoever asked). */
export interface AnySchema {
  readonly kind: 'any';
}
/** A value read by a function of its own (keys, handshake offers); it throws its own coded error. */
export interface CustomSchema<T = unknown> {
  readonly kind: 'custom';
  readonly read: (value: unknown, field: string, refuse: Refuse) => T;
}
/** A field that may be absent (or null, with `nullIsAbsent`); absent fields are left out of the result. */
export interface OptionalSchema<S extends Schema = Schema> {
  readonly kind: 'optional';
  readonly schema: S;
  readonly nullIsAbsent?: boolean;
}
/** A field that takes `value` when absent (or null, with `nullIsAbsent`). */
export interface DefaultSchema<S extends Schema = Schema> {
  readonly kind: 'default';
  readonly schema: S;
  readonly value: unknown;
  readonly nullIsAbsent?: boolean;
}

export type Schema =
  | StringSchema
  | IntegerSchema
  | NumberSchema
  | BooleanSchema
  | FlagSchema
  | EnumSchema
  | ArraySchema<any>
  | ObjectSchema<any>
  | AnySchema
  | CustomSchema<any>
  | OptionalSchema<any>
  | DefaultSchema<any>;
export type Fields = Readonly<Record<string, Schema>>;

/** The TypeScript type of the values a schema accepts (after `check`). */
export type Static<S> = S extends StringSchema
  ? string
  : S extends IntegerSchema | NumberSchema
    ? number
    : S extends BooleanSchema | FlagSchema
      ? boolean
      : S extends EnumSchema<infer V>
        ? V
        : S extends ArraySchema<infer I>
          ? Static<I>[]
          : S extends ObjectSchema<infer F>
            ? StaticObject<F>
            : S extends CustomSchema<infer T>
              ? T
              : S extends OptionalSchema<infer I> | DefaultSchema<infer I>
                ? Static<I>
                : unknown;
type OptionalKeys<F> = { [K in keyof F]: F[K] extends OptionalSchema | FlagSchema ? K : never }[keyof F];
type StaticObject<F> = Flatten<{ -readonly [K in Exclude<keyof F, OptionalKeys<F>>]: Static<F[K]> } & { -readonly [K in OptionalKeys<F>]?: Static<F[K]> }>;
type Flatten<T> = { [K in keyof T]: T[K] };

/** Builders: `s.object({ name: s.string({ max: MAX_SERVICE_REF, min: 1 }), port: s.optional(s.integer(...)) })`. */
export const s = {
  string: (opts: Omit<StringSchema, 'kind'>): StringSchema => ({ kind: 'string', ...opts }),
  integer: (min: number, max: number, expect?: string): IntegerSchema => ({ kind: 'integer', min, max, ...(expect ? { expect } : {}) }),
  number: (min: number, max: number, expect?: string): NumberSchema => ({ kind: 'number', min, max, ...(expect ? { expect } : {}) }),
  boolean: (): BooleanSchema => ({ kind: 'boolean' }),
  /** true or false, kept only when true: a field that is present when it is true. */
  flag: (): FlagSchema => ({ kind: 'flag' }),
  enum: <const V extends string>(values: readonly V[], expect?: string): EnumSchema<V> => ({ kind: 'enum', values, ...(expect ? { expect } : {}) }),
  array: <I extends Schema>(items: I, min: number, max: number, expect?: string): ArraySchema<I> => ({ kind: 'array', items, min, max, ...(expect ? { expect } : {}) }),
  object: <F extends Fields>(fields: F): ObjectSchema<F> => ({ kind: 'object', fields }),
  any: (): AnySchema => ({ kind: 'any' }),
  custom: <T>(read: (value: unknown, field: string, refuse: Refuse) => T): CustomSchema<T> => ({ kind: 'custom', read }),
  optional: <S extends Schema>(schema: S, opts: { nullIsAbsent?: boolean } = {}): OptionalSchema<S> => ({ kind: 'optional', schema, ...opts }),
  default: <S extends Schema>(schema: S, value: unknown, opts: { nullIsAbsent?: boolean } = {}): DefaultSchema<S> => ({ kind: 'default', schema, value, ...opts }),
};

/** Turns a refusal message into the error the caller throws (BAD_MESSAGE for messages, BAD_REQUEST for arguments). */
export type Refuse = (message: string) => Error;

/**
 * Checks `value` against `schema` and returns what it accepts (unknown fields dropped, defaults filled in), or throws
 * `refuse(message)` for the first field that does not fit. `field` names the value in that message ('' for the
 * top-level fields of arguments, which are then named bare).
 */
export function check<S extends Schema>(schema: S, value: unknown, field: string, refuse: Refuse): Static<S> {
  return read(schema, value, field, refuse) as Static<S>;
}

/** `check` for a schema chosen at run time (its type unknown to the compiler): the caller says what it returns. */
export function checkUnknown(schema: Schema, value: unknown, field: string, refuse: Refuse): unknown {
  return read(schema, value, field, refuse);
}

function read(schema: Schema, value: unknown, field: string, refuse: Refuse): unknown {
  const name = field || 'the value';
  switch (schema.kind) {
    case 'string': {
      const min = schema.min ?? 0;
      if (typeof value !== 'string' || value.length < min) throw refuse(`${name} must be ${schema.expect ?? (min > 0 ? 'a non-empty string' : 'a string')}`);
      if (value.length > schema.max) throw refuse(`${name} is longer than ${schema.max} characters`);
      if (schema.pattern && !schema.pattern.test(value)) throw refuse(`${name} must be ${schema.expect ?? `a string matching ${schema.pattern}`}`);
      return value;
    }
    case 'integer':
      if (!Number.isSafeInteger(value) || (value as number) < schema.min || (value as number) > schema.max) {
        throw refuse(`${name} must be ${schema.expect ?? `a whole number from ${schema.min} to ${schema.max}`}`);
      }
      return value;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value) || value < schema.min || value > schema.max) {
        throw refuse(`${name} must be ${schema.expect ?? `a number from ${schema.min} to ${schema.max}`}`);
      }
      return value;
    case 'boolean':
    case 'flag':
      if (typeof value !== 'boolean') throw refuse(`${name} must be true or false`);
      return value;
    case 'enum':
      if (typeof value !== 'string' || !schema.values.includes(value)) throw refuse(`${name} must be ${schema.expect ?? `one of ${schema.values.join(', ')}`}`);
      return value;
    case 'array': {
      if (!Array.isArray(value) || value.length < schema.min || value.length > schema.max) {
        const size = schema.min > 0 ? `of ${schema.min} to ${schema.max} items` : `of at most ${schema.max} items`;
        throw refuse(`${name} must be ${schema.expect ?? `an array ${size}`}`);
      }
      return value.map((item, i) => read(schema.items as Schema, item, `${field}[${i}]`, refuse));
    }
    case 'object':
      return readObject(schema.fields as Fields, value, field, refuse);
    case 'any':
      return value;
    case 'custom':
      return schema.read(value, name, refuse);
    case 'optional':
    case 'default':
      // A bare optional value (not a field of an object): absent reads as absent, or as the default.
      if (isAbsent(schema, value)) return schema.kind === 'default' ? schema.value : undefined;
      return read(schema.schema as Schema, value, field, refuse);
  }
}

function isAbsent(schema: OptionalSchema | DefaultSchema, value: unknown): boolean {
  return value === undefined || (value === null && schema.nullIsAbsent === true);
}

function readObject(fields: Fields, value: unknown, field: string, refuse: Refuse): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw refuse(`${field || 'the arguments'} must be an object`);
  const input = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(fields)) {
    const raw = Object.hasOwn(input, key) ? input[key] : undefined;
    const path = field ? `${field}.${key}` : key;
    if (schema.kind === 'optional' || schema.kind === 'default') {
      if (isAbsent(schema, raw)) {
        if (schema.kind === 'default') out[key] = schema.value;
        continue;
      }
      const inner = schema.schema as Schema;
      const got = read(inner, raw, path, refuse);
      if (inner.kind === 'flag' && got !== true) continue;
      out[key] = got;
      continue;
    }
    if (schema.kind === 'flag') {
      // A flag is optional by nature: absent or false leaves it out.
      if (raw === undefined) continue;
      if (read(schema, raw, path, refuse) === true) out[key] = true;
      continue;
    }
    out[key] = read(schema, raw, path, refuse);
  }
  return out;
}
