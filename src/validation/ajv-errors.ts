// ajv's errors as field errors: one path and one message each, in the house's words.
import { unstorableMessage } from './check-metadata.js';
import { childPath, type FieldErrorList } from './field-error-list.js';

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}
export type CompiledValidator = ((data: unknown) => boolean) & { errors?: AjvError[] | null };

export function collectAjvErrors(
  validate: CompiledValidator,
  value: unknown,
  errors: FieldErrorList,
): void {
  if (validate(value)) return;
  for (const error of validate.errors ?? []) {
    if (errors.isFull) {
      errors.leftOut = true;
      return;
    }
    const base = fieldPath(error.instancePath);
    switch (error.keyword) {
      case 'required':
        errors.add(childPath(base, String(error.params.missingProperty)), 'is required');
        break;
      case 'additionalProperties':
        errors.add(
          childPath(base, String(error.params.additionalProperty)),
          'is not a known field',
        );
        break;
      case 'pattern':
        errors.add(base, unstorableMessage);
        break;
      case 'propertyNames':
        break; // the nested error on the name itself says what is wrong
      default: {
        const name = error.params.propertyName;
        const target = typeof name === 'string' ? childPath(base, name) : base;
        errors.add(target || '(body)', error.message ?? error.keyword);
      }
    }
  }
}

/** `/events/3/metadata/a~1b` → `events[3].metadata.a/b`: a JSON Pointer as the field path a 400 names. */
function fieldPath(pointer: string): string {
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    path = /^\d+$/.test(segment) ? `${path}[${segment}]` : childPath(path, segment);
  }
  return path;
}
