// A Postgres snapshot (pg_current_snapshot()'s text, `xmin:xmax:xip,…`) and which transactions it
// sees as committed: those before xmin, and those before xmax not in progress when it was taken.
export interface Snapshot {
  readonly text: string;
  /** No transaction before it was in progress. */
  readonly xmin: number;
  /** No transaction from it on had started. */
  readonly xmax: number;
  /** Whether a transaction that has committed by now had committed when the snapshot was taken. */
  sees(txid: number): boolean;
}

export function parseSnapshot(text: string): Snapshot {
  const [min = '', max = '', xip = ''] = text.split(':');
  const xmin = Number(min);
  const xmax = Number(max);
  const inProgress = new Set(xip === '' ? [] : xip.split(',').map(Number));
  return {
    text,
    xmin,
    xmax,
    sees: (txid) => txid < xmin || (txid < xmax && !inProgress.has(txid)),
  };
}
