// A Postgres snapshot (pg_current_snapshot()'s text, `xmin:xmax:xip,…`) and which transactions it
// sees as committed: those before xmin, and those before xmax not in progress when it was taken.
export interface Snapshot {
  readonly text: string;
  /** Whether a transaction that has committed by now had committed when the snapshot was taken. */
  sees(txid: number): boolean;
}

export function parseSnapshot(text: string): Snapshot {
  const [xmin, xmax, xip = ''] = text.split(':');
  const min = Number(xmin);
  const max = Number(xmax);
  const inProgress = new Set(xip === '' ? [] : xip.split(',').map(Number));
  return { text, sees: (txid) => txid < min || (txid < max && !inProgress.has(txid)) };
}
