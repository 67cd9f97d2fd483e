// The numbers as text: totals, the chart's table view, the two breakdowns.
import type { BreakdownValue, Bucket, Counts } from './metrics-client.js';

const numbers = new Intl.NumberFormat();

export function formatCount(n: number): string {
  return numbers.format(n);
}

function row(cells: readonly string[], header = false): HTMLTableRowElement {
  const tr = document.createElement('tr');
  cells.forEach((text, i) => {
    const cell = document.createElement(i === 0 && header ? 'th' : 'td');
    if (i === 0 && header) cell.setAttribute('scope', 'row');
    cell.textContent = text;
    cell.title = text;
    tr.append(cell);
  });
  return tr;
}

export function showTotals(totals: Counts): void {
  document.getElementById('total-count')!.textContent = formatCount(totals.count);
  document.getElementById('total-users')!.textContent = formatCount(totals.unique_users);
}

export function bucketLabel(tz: string, withTime: boolean): (seconds: number) => string {
  const format = new Intl.DateTimeFormat(undefined, {
    timeZone: tz,
    dateStyle: 'medium',
    ...(withTime ? { timeStyle: 'short' } : {}),
  });
  return (seconds) => format.format(new Date(seconds * 1000));
}

export function showSeriesTable(buckets: readonly Bucket[], label: (s: number) => string): void {
  const body = document.querySelector('#series-table tbody')!;
  body.replaceChildren(
    ...buckets.map((b) =>
      row([label(b.bucket_start), formatCount(b.count), formatCount(b.unique_users)], true),
    ),
  );
}

export function showBreakdown(
  tableId: string,
  listId: string,
  values: readonly BreakdownValue[],
  other: Counts,
): void {
  const rows = values.map((v) =>
    row([v.value ?? '(none)', formatCount(v.count), formatCount(v.unique_users)], true),
  );
  if (other.count > 0)
    rows.push(
      row(['(all other values)', formatCount(other.count), formatCount(other.unique_users)], true),
    );
  const table = document.getElementById(tableId)!;
  const head = document.createElement('thead');
  const names = head.insertRow();
  for (const name of [table.dataset.column ?? '', 'Events', 'Unique users'])
    names.append(Object.assign(document.createElement('th'), { scope: 'col', textContent: name }));
  const body = document.createElement('tbody');
  body.append(...rows);
  table.replaceChildren(head, body);
  // Offered as suggestions in the filter's text box.
  document
    .getElementById(listId)!
    .replaceChildren(
      ...values
        .filter((v) => v.value !== null)
        .map((v) => Object.assign(document.createElement('option'), { value: v.value })),
    );
}
