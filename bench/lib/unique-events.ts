// Request bodies with a unique event_id per event, built by splicing a counter into precomputed
// strings: JSON.stringify per request would cost the load generator the core it needs to send.

export interface UniqueEvents {
  /** One event as the POST /events body. */
  nextSingleBody(): string;
  /** `{"events":[…]}` with `count` events, for POST /events/bulk. */
  nextBulkBody(count: number): string;
  /** Events handed out so far. */
  readonly issued: number;
  /** The pieces an event is spliced from, for a load generator that builds bodies itself (wrk's
   *  Lua): `${head}${n}${middle}${n % userCount}${tail}`. Each call names its events apart from
   *  every other call's and from the bodies above. */
  pieces(): BodyPieces;
}

export interface BodyPieces {
  readonly head: string;
  readonly middle: string;
  readonly tail: string;
  readonly userCount: number;
}

export interface UniqueEventsOptions {
  /** Makes event_ids unique across bench runs and scenarios, e.g. `<random>-<scenario>`. */
  readonly idPrefix: string;
  readonly eventName: string;
  /** Epoch seconds; one value for every event, so a /metrics window can select exactly them. */
  readonly timestamp: number;
  /** Pad each event with metadata to about this many bytes of JSON (unset: no metadata). */
  readonly eventBytes?: number;
}

/** Distinct user_ids cycled through: enough that unique_users means something, few enough to be
 *  realistic for one event name. */
const userCount = 10_000;

export function uniqueEvents(options: UniqueEventsOptions): UniqueEvents {
  const head = `{"event_id":${JSON.stringify(`${options.idPrefix}-`).slice(0, -1)}`;
  const middle = `","event_name":${JSON.stringify(options.eventName)},"user_id":"u`;
  const plainTail = `","timestamp":${options.timestamp},"channel":"web"`;
  const unpadded = `${head}0${middle}0${plainTail},"metadata":{"p0":""}}`.length;
  const tail =
    options.eventBytes === undefined
      ? `${plainTail}}`
      : `${plainTail},"metadata":${paddingMetadata(options.eventBytes - unpadded)}}`;
  let counter = 0;
  let piecesHandedOut = 0;
  const next = () => {
    const n = counter++;
    return `${head}${n}${middle}${n % userCount}${tail}`;
  };
  return {
    nextSingleBody: next,
    nextBulkBody: (count) => {
      let body = '{"events":[';
      for (let i = 0; i < count; i++) body += i === 0 ? next() : `,${next()}`;
      return `${body}]}`;
    },
    get issued() {
      return counter;
    },
    pieces: () => ({ head: `${head}p${piecesHandedOut++}-`, middle, tail, userCount }),
  };
}

/** The event schema caps a metadata string at 65,536 characters: longer padding takes several. */
const metadataStringMaxChars = 65_536;

/** A metadata object of about `chars` characters of padding. */
function paddingMetadata(chars: number): string {
  const parts: string[] = [];
  for (let left = Math.max(0, chars), i = 0; left > 0 || i === 0; i++) {
    const take = Math.min(left, metadataStringMaxChars);
    parts.push(`"p${i}":"${'x'.repeat(take)}"`);
    left -= take;
  }
  return `{${parts.join(',')}}`;
}
