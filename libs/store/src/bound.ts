import pgPromise from 'pg-promise';

/**
 * A statement whose values travel as bind parameters (the extended protocol), not formatted into its text. pg-promise
 * formats values into the SQL on the client by default: a batch's `unnest` arrays of thousands of ids became
 * thousands of escaped literals, built by pg-promise and parsed again by Postgres. Bound, each array is one
 * parameter in Postgres' array syntax, read by the array input function. Same SQL, same results: for the big
 * multi-row statements of the write path (the consumer's transaction, write-through).
 */
export function bound(text: string, values: unknown[]): pgPromise.ParameterizedQuery {
  return new pgPromise.ParameterizedQuery({ text, values });
}
