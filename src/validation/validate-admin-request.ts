// The admin API's request bodies: parsed JSON checked against their schemas, every bad field named.
import { problem, type Problem } from '../errors.js';
import { collectAjvErrors, type CompiledValidator } from './ajv-errors.js';
import { FieldErrorList } from './field-error-list.js';
import {
  validateKeyCreate,
  validateProjectCreate,
  validateProjectUpdate,
} from './generated/validators.js';

export interface ProjectCreate {
  readonly name: string;
}
export interface KeyCreate {
  readonly scope: 'write' | 'read' | 'admin';
  readonly name?: string;
}
export interface ProjectUpdate {
  readonly ingest_events_per_second?: number | null;
  readonly metrics_requests_per_minute?: number | null;
  readonly cors_origins?: string[];
}

export type AdminRequestResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: Problem };

/** An origin as a browser sends it, byte for byte: scheme, host, optional port; no path, no `*`. */
const originPattern = /^https?:\/\/[\x21-\x29\x2b-\x2e\x30-\x7e]+$/;

function check<T>(validate: CompiledValidator, value: unknown): AdminRequestResult<T> {
  const errors = new FieldErrorList();
  collectAjvErrors(validate, value, errors);
  const origins = (value as ProjectUpdate | null)?.cors_origins;
  if (validate === validateProjectUpdate && errors.isEmpty && origins)
    origins.forEach((origin, i) => {
      if (!originPattern.test(origin))
        errors.add(`cors_origins[${i}]`, 'must be an origin (scheme://host[:port]), no path or *');
    });
  if (errors.isEmpty) return { ok: true, value: value as T };
  return {
    ok: false,
    problem: problem('validation_failed', 'The request body failed validation.', {
      errors: errors.byPath,
    }),
  };
}

export const checkProjectCreate = (value: unknown) =>
  check<ProjectCreate>(validateProjectCreate as CompiledValidator, value);
export const checkKeyCreate = (value: unknown) =>
  check<KeyCreate>(validateKeyCreate as CompiledValidator, value);
export const checkProjectUpdate = (value: unknown) =>
  check<ProjectUpdate>(validateProjectUpdate as CompiledValidator, value);
