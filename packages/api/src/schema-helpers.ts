/** Small builders the request and answer schemas share. */

import { Type } from '@sinclair/typebox';

/** One of a few strings, as JSON Schema's `enum` (the form OpenAPI documents keep as it is). */
export const stringEnum = <const T extends string[]>(values: T, description?: string) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: values, ...(description !== undefined ? { description } : {}) });
