// What the events table stores of an event, in one list that the insert and the export both
// read. Adding an event field means its schema, a migration, and one entry here.
import type { IncomingEvent } from '../validation/validate-events.js';

export interface EventColumn {
  /** The column of the events table. */
  readonly column: string;
  /** The event's field, as sent and as exported. */
  readonly field: keyof IncomingEvent;
  /** Absent from an event when null: the export leaves it out, as it was sent. */
  readonly optional: boolean;
  /** The array type a batch's values travel in: one parameter per column, whatever the batch. */
  readonly arrayType: string;
  /** SQL for the stored value from `element`, one element of that array. */
  readonly fromElement: (element: string) => string;
  /** SQL for the exported JSON value from the stored one. */
  readonly toJson: string;
  /** One event's element of the array. */
  readonly element: (event: IncomingEvent) => string | number | null;
}

const textColumn = (
  field: EventColumn['field'],
  optional: boolean,
  element: EventColumn['element'],
): EventColumn => ({
  column: field,
  field,
  optional,
  arrayType: 'text[]',
  fromElement: (e) => e,
  toJson: field,
  element,
});

export const eventColumns: readonly EventColumn[] = [
  textColumn('event_id', true, (event) => event.event_id ?? null),
  textColumn('event_name', false, (event) => event.event_name),
  textColumn('user_id', false, (event) => event.user_id),
  {
    column: 'occurred_at',
    field: 'timestamp',
    optional: false,
    arrayType: 'int8[]',
    fromElement: (e) => `to_timestamp(${e})`,
    toJson: 'extract(epoch FROM occurred_at)::int8',
    element: (event) => event.timestamp,
  },
  textColumn('channel', true, (event) => event.channel ?? null),
  textColumn('campaign_id', true, (event) => event.campaign_id ?? null),
  // Array and JSON values travel as text, one per row, each cast on its own: a 2-D array
  // parameter would have to be rectangular, and rows have different tag counts.
  {
    ...textColumn('tags', true, (event) => (event.tags ? postgresArrayLiteral(event.tags) : null)),
    fromElement: (e) => `${e}::text[]`,
  },
  {
    ...textColumn('metadata', true, (event) =>
      event.metadata ? JSON.stringify(event.metadata) : null,
    ),
    fromElement: (e) => `${e}::jsonb`,
  },
];

function postgresArrayLiteral(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/[\\"]/g, '\\$&')}"`).join(',')}}`;
}
