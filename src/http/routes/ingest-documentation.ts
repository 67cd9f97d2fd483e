// The OpenAPI side of POST /events and POST /events/bulk: their operations and answer schemas.
import type { Config } from '../../config.js';
import type { ProblemCode } from '../../errors.js';
import {
  authFailures429,
  bodyOf,
  fieldErrorsSchema,
  headSizeResponses,
  problemResponse,
  queryParameter,
  retryAfterHeader,
  type Json,
} from '../openapi.js';
import type { Route } from '../route.js';

function ingestResponses(success: string, extra400: ProblemCode[] = []): Json {
  return {
    '202': {
      description:
        'Accepted. With INGEST_ACK=durable the events are committed; the body says which were new.',
      ...bodyOf('application/json', success),
    },
    '400': problemResponse([
      'invalid_json',
      'invalid_encoding',
      'validation_failed',
      'bad_framing',
      ...extra400,
    ]),
    '401': problemResponse(['unauthorized']),
    '408': problemResponse(['body_timeout']),
    '411': problemResponse(['length_required']),
    '413': problemResponse(['payload_too_large']),
    '415': problemResponse(['unsupported_media_type']),
    '422': problemResponse(['unstorable_event']),
    ...headSizeResponses,
    '429': authFailures429,
    '500': problemResponse(['internal']),
    '503': {
      ...problemResponse(['queue_full', 'database_unavailable', 'ingest_timeout', 'shutting_down']),
      headers: retryAfterHeader,
    },
  };
}

function requestBody(config: Config, schemaName: string): Json {
  return {
    required: true,
    description: `application/json, optionally Content-Encoding: gzip; at most ${config.maxBodyBytes} bytes (MAX_BODY_BYTES) after inflating.`,
    ...bodyOf('application/json', schemaName),
  };
}

export function eventsDocumentation(config: Config): Pick<Route, 'operation' | 'schemas'> {
  return {
    operation: {
      summary: 'Ingest one event',
      requestBody: requestBody(config, 'Event'),
      responses: ingestResponses('SingleIngestResult'),
    },
    schemas: { SingleIngestResult: singleIngestResult },
  };
}

export function bulkDocumentation(config: Config): Pick<Route, 'operation' | 'schemas'> {
  const operation = {
    summary: `Ingest 1 to BULK_MAX_EVENTS (${config.bulkMaxEvents}) events, all or nothing unless partial=true`,
    parameters: [
      queryParameter(
        'partial',
        'true: store the valid events and list the invalid ones in the 202 (rejected_count, errors); 400 only when the envelope is wrong or no event is valid. Default false: one invalid event refuses the request (400).',
        { type: 'boolean', default: false },
      ),
    ],
    requestBody: requestBody(config, 'BulkRequest'),
    responses: ingestResponses('BulkIngestResult', ['invalid_query']),
  };
  return { operation, schemas: { BulkIngestResult: bulkIngestResult } };
}

const singleIngestResult = {
  type: 'object',
  required: ['status'],
  properties: {
    status: {
      type: 'string',
      enum: ['stored', 'queued'],
      description: '`queued` with INGEST_ACK=queued.',
    },
    inserted: { type: 'integer', enum: [0, 1] },
    duplicate: { type: 'boolean' },
  },
};

const bulkIngestResult = {
  type: 'object',
  required: ['accepted_count'],
  properties: {
    accepted_count: { type: 'integer' },
    inserted: { type: 'integer', description: 'Absent with INGEST_ACK=queued.' },
    duplicates: { type: 'integer', description: 'Absent with INGEST_ACK=queued.' },
    status: {
      type: 'string',
      enum: ['queued'],
      description: 'Present with INGEST_ACK=queued.',
    },
    rejected_count: {
      type: 'integer',
      description: 'Only with partial=true: invalid events left out (not stored).',
    },
    errors: {
      ...fieldErrorsSchema,
      description:
        'Only with partial=true and rejected_count > 0: why each left-out event was refused, by field path (`events[3].timestamp`).',
    },
  },
};
