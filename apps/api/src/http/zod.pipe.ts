import { type ArgumentMetadata, Injectable, type PipeTransform } from '@nestjs/common';
import type { z } from 'zod';
import { ValidationError } from './api.error.js';

/**
 * Validates one part of the request (body, a route parameter, the query) against a zod schema and returns
 * the parsed value. Every issue becomes a field error named after where it is: `body.increments.3.by`.
 */
@Injectable()
export class ZodPipe<S extends z.ZodType> implements PipeTransform<unknown, z.infer<S>> {
  constructor(private readonly schema: S) {}

  transform(value: unknown, metadata: ArgumentMetadata): z.infer<S> {
    const result = this.schema.safeParse(value);
    if (result.success) return result.data;
    const where = metadata.type === 'param' ? `params.${metadata.data ?? ''}` : metadata.type;
    throw new ValidationError(
      result.error.issues.slice(0, 50).map((issue) => ({
        field: [where, ...issue.path.map(String)].join('.'),
        message: issue.message,
      })),
    );
  }
}
