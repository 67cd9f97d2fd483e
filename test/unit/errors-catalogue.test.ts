// Every catalogue entry renders as an RFC 9457 problem with its stable code.
import { describe, expect, it } from 'vitest';
import {
  problem,
  problemBody,
  problemCatalogue,
  problemStatus,
  type ProblemCode,
} from '../../src/errors.js';

const codes = Object.keys(problemCatalogue) as ProblemCode[];

describe('the problem catalogue', () => {
  it.each(codes)('renders %s with type, title, status, detail and code', (code) => {
    const entry = problemCatalogue[code];
    const p = problem(code, 'what happened');
    expect(JSON.parse(problemBody(p))).toEqual({
      type: `urn:pulse:problem:${code}`,
      title: entry.title,
      status: entry.status,
      detail: 'what happened',
      code,
    });
    expect(problemStatus(p)).toBe(entry.status);
  });

  it('uses only 4xx and 5xx statuses', () => {
    const statuses = codes.map((c) => problemCatalogue[c].status);
    expect(statuses.filter((s) => s < 400 || s > 599)).toEqual([]);
  });

  it('renders field errors under `errors`', () => {
    const body = problemBody(
      problem('validation_failed', 'bad', { errors: { user_id: ['is required'] } }),
    );
    expect(JSON.parse(body)).toEqual({
      type: 'urn:pulse:problem:validation_failed',
      title: 'Request body failed validation',
      status: 400,
      detail: 'bad',
      code: 'validation_failed',
      errors: { user_id: ['is required'] },
    });
  });

  it('renders extension members beside the standard ones', () => {
    const body = problemBody(
      problem('not_ready', 'db down', { extensions: { checks: { database: 'x' } } }),
    );
    expect(JSON.parse(body)).toMatchObject({
      code: 'not_ready',
      status: 503,
      checks: { database: 'x' },
    });
  });

  it('does not put Retry-After seconds in the body', () => {
    const body = problemBody(problem('queue_full', 'full', { retryAfterSeconds: 2 }));
    expect(Object.keys(JSON.parse(body) as object).sort()).toEqual([
      'code',
      'detail',
      'status',
      'title',
      'type',
    ]);
  });
});
