// How one environment variable is read: its name, what it accepts (quoted in the start-up error),
// a parser that answers undefined for anything else, and its default.

export interface Variable<T> {
  readonly name: string;
  readonly accepts: string;
  readonly parse: (raw: string) => T | undefined;
  readonly fallback: T;
}

export function variable<T>(
  name: string,
  accepts: string,
  parse: (raw: string) => T | undefined,
  fallback: T,
): Variable<T> {
  return { name, accepts, parse, fallback };
}

const int = (min: number, max: number) => (raw: string) => {
  if (!/^\d+$/.test(raw.trim())) return undefined;
  const n = Number(raw);
  return n >= min && n <= max ? n : undefined;
};
export const oneOf =
  <T extends string>(...values: T[]) =>
  (raw: string) =>
    values.find((v) => v === raw.trim().toLowerCase());
export const text = (raw: string) => (raw.trim() === '' ? undefined : raw.trim());
/** An integer variable: what it accepts is written from the bounds it checks. */
export function integer(
  name: string,
  min: number,
  max: number,
  fallback: number,
  note?: string,
): Variable<number> {
  const accepts = `an integer ${min}–${max}${note === undefined ? '' : ` (${note})`}`;
  return variable(name, accepts, int(min, max), fallback);
}
/** The non-empty items of a comma-separated list, trimmed. */
export const commaList = (raw: string) =>
  raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
