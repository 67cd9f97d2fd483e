// The benches' command-line parser: each script hands it a table of its options and gets back
// validated values, or the process exits with every problem and the usage.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export interface IntegerOption {
  readonly kind: 'integer';
  readonly default: number;
  readonly min: number;
  readonly max: number;
}
/** A string that may be absent. */
export interface TextOption {
  readonly kind: 'text';
}
/** A string that may be given any number of times. */
export interface RepeatedOption {
  readonly kind: 'repeated';
}
/** Present or not. */
export interface FlagOption {
  readonly kind: 'flag';
}
export type OptionTable = Readonly<
  Record<string, IntegerOption | TextOption | RepeatedOption | FlagOption>
>;

export type OptionValues<T extends OptionTable> = {
  readonly [K in keyof T]: T[K] extends IntegerOption
    ? number
    : T[K] extends TextOption
      ? string | undefined
      : T[K] extends FlagOption
        ? boolean
        : readonly string[];
};

export const integer = (defaultValue: number, min: number, max: number): IntegerOption => ({
  kind: 'integer',
  default: defaultValue,
  min,
  max,
});
export const text: TextOption = { kind: 'text' };
export const repeated: RepeatedOption = { kind: 'repeated' };
export const flag: FlagOption = { kind: 'flag' };

/**
 * Parses argv against the table; `shape` turns the values into the script's options and adds its
 * own problems (cross-checks, KEY=VALUE pairs). --help prints the usage and exits 0; any problem
 * prints them all with the usage and exits 2.
 */
export function parseBenchOptions<T extends OptionTable, R>(
  argv: readonly string[],
  table: T,
  usage: string,
  shape: (values: OptionValues<T>, problems: string[]) => R,
): Readonly<R> {
  const descriptors: NonNullable<ParseArgsConfig['options']> = {
    help: { type: 'boolean', default: false },
  };
  for (const [name, option] of Object.entries(table))
    descriptors[name] =
      option.kind === 'integer'
        ? { type: 'string', default: String(option.default) }
        : option.kind === 'repeated'
          ? { type: 'string', multiple: true, default: [] }
          : option.kind === 'flag'
            ? { type: 'boolean', default: false }
            : { type: 'string' };
  const { values } = parseArgs({ args: [...argv], options: descriptors, strict: true });
  if (values.help === true) {
    console.log(usage);
    process.exit(0);
  }
  const problems: string[] = [];
  const parsed: Record<string, unknown> = {};
  for (const [name, option] of Object.entries(table)) {
    const raw = values[name];
    if (option.kind !== 'integer') {
      parsed[name] = raw;
      continue;
    }
    const n = Number(raw);
    if (!Number.isInteger(n) || n < option.min || n > option.max)
      problems.push(`--${name} ${String(raw)}: expected an integer ${option.min}–${option.max}`);
    parsed[name] = n;
  }
  const options = shape(parsed as OptionValues<T>, problems);
  if (problems.length > 0) {
    console.error(`${problems.join('\n')}\n\n${usage}`);
    process.exit(2);
  }
  return Object.freeze(options);
}
