/**
 * Fast validation for records that are kept as received.
 *
 * The entity schemas are loose (unknown keys kept), and zod's loose objects copy every key of
 * every nested object, which costs about as much as JSON.parse itself. Our schemas have no
 * transforms or defaults, so a record that passes validation is already exactly what parsing
 * would return. We therefore validate with a structurally identical schema whose objects strip
 * (zod's fast path), then keep the original record: same checks and issue paths, no copy, and
 * unknown fields at any depth are preserved.
 */
import { z } from 'zod';

const cache = new WeakMap<z.ZodType, z.ZodType>();

function rebuild(schema: z.ZodType): z.ZodType {
  if (schema instanceof z.ZodObject) {
    const shape: Record<string, z.ZodType> = {};
    for (const [key, value] of Object.entries(schema.shape)) shape[key] = validatorFor(value as z.ZodType);
    return z.object(shape);
  }
  if (schema instanceof z.ZodOptional) return validatorFor(schema.unwrap() as z.ZodType).optional();
  if (schema instanceof z.ZodNullable) return validatorFor(schema.unwrap() as z.ZodType).nullable();
  if (schema instanceof z.ZodArray) return z.array(validatorFor(schema.element as z.ZodType));
  // Unions (id values) are small and keep their own error messages: they are used as they are.
  return schema;
}

/** The stripping twin of `schema`, used only to validate (its output is discarded). */
export function validatorFor(schema: z.ZodType): z.ZodType {
  let validator = cache.get(schema);
  if (!validator) {
    validator = rebuild(schema);
    cache.set(schema, validator);
  }
  return validator;
}

export type Validation<T> = { success: true; data: T } | { success: false; error: z.ZodError };

/**
 * Validate `value` against `schema` and return the value itself (not a copy) typed as the
 * schema's output. Only valid for schemas without transforms, defaults or coercion, which is
 * the case for every entity schema of this package.
 */
export function validateRecord<T>(schema: z.ZodType<T>, value: unknown): Validation<T> {
  const result = validatorFor(schema).safeParse(value);
  if (!result.success) return { success: false, error: result.error };
  // The twin schema accepted `value`, and the schema has no transforms, so `value` is a T.
  return { success: true, data: value as T };
}
