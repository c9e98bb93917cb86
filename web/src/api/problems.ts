/**
 * The fields an API problem names. A refused request answers RFC 9457 problem+json with
 * `errors: [{field, message}]`, `field` a dotted path into the body ("cpu", "env.MY_KEY",
 * "ports.2"); forms show each message on the control it names.
 */
import { ApiError } from './client';

export interface FieldProblem {
  field: string;
  message: string;
}

/** The field errors of an ApiError (none for other errors or a problem without them). */
export function fieldProblems(error: unknown): FieldProblem[] {
  if (!(error instanceof ApiError)) return [];
  const body = error.problem as { errors?: unknown } | null | undefined;
  if (!body || !Array.isArray(body.errors)) return [];
  return body.errors.flatMap((entry: unknown) => {
    const { field, message } = (entry ?? {}) as { field?: unknown; message?: unknown };
    return typeof field === 'string' && typeof message === 'string' ? [{ field, message }] : [];
  });
}

/**
 * The field errors of `error` by the form field they belong to: `toFormField` maps an API
 * path to a form field name, or null when the form has no control for it. What no control
 * shows is returned in `unplaced`, to be said above the form.
 */
export function problemsByField(
  error: unknown,
  toFormField: (path: string) => string | null,
): { byField: Record<string, string>; unplaced: FieldProblem[] } {
  const byField: Record<string, string> = {};
  const unplaced: FieldProblem[] = [];
  for (const problem of fieldProblems(error)) {
    const field = toFormField(problem.field);
    if (field === null) unplaced.push(problem);
    else byField[field] = byField[field] ? `${byField[field]}; ${problem.message}` : problem.message;
  }
  return { byField, unplaced };
}
