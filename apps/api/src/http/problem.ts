import type { FieldError } from './api.error.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** RFC 9457 problem details, with field errors for validation problems. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  errors?: FieldError[];
}

export function problem(status: number, type: string, title: string, detail?: string, instance?: string): Problem {
  return {
    type: `/problems/${type}`,
    title,
    status,
    ...(detail !== undefined && detail !== title ? { detail } : {}),
    ...(instance !== undefined ? { instance } : {}),
  };
}
