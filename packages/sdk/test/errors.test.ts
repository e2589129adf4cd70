import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  errorFromResponse,
  NotFoundError,
  InvalidError,
  TimeoutError,
  UnavailableError,
  AuthError,
  PayloadTooLargeError,
  SandboxError,
  ConflictError,
  InternalError,
} from '../src/errors.ts';

describe('errorFromResponse', () => {
  const cases: Array<[number, unknown, new (...a: any[]) => SandboxError]> = [
    [404, { reason: 'NotFound', message: 'sandbox "x" not found' }, NotFoundError],
    [
      422,
      { reason: 'Invalid', message: 'bad', details: { causes: [{ field: 'metadata.name', message: 'x' }] } },
      InvalidError,
    ],
    [400, { detail: 'X-Sandbox-ID header is required.' }, InvalidError],
    [400, { reason: 'PathOutsideSandbox', detail: 'outside' }, InvalidError],
    [413, { reason: 'PayloadTooLarge', message: 'too big' }, PayloadTooLargeError],
    [504, {}, TimeoutError],
    [503, { reason: 'Unavailable', message: 'stopped' }, UnavailableError],
    [502, { detail: 'Could not connect to the backend sandbox: x' }, UnavailableError],
    [401, { reason: 'Unauthorized', message: 'token' }, AuthError],
    [418, {}, SandboxError],
    // A conflict (already suspended, snapshot in use) is not an invalid request: its own class.
    [409, { reason: 'Conflict', message: 'sandbox "x" is already suspended' }, ConflictError],
    [409, {}, ConflictError],
    [409, { reason: 'AlreadyExists', message: 'a sandbox claim named "x" already exists' }, InvalidError],
    [500, { reason: 'Internal', message: 'boom' }, InternalError],
    [500, { reason: 'NoSuchReason', message: 'boom' }, SandboxError],
  ];
  for (const [status, body, Ctor] of cases) {
    it(`maps ${status} ${JSON.stringify(body).slice(0, 40)} to ${Ctor.name}`, () => {
      const err = errorFromResponse(status, body, 'doing a thing');
      assert.ok(err instanceof Ctor);
      assert.equal(err.name, Ctor.name);
      assert.match(err.message, /^doing a thing: /);
    });
  }
  it('keeps field causes of invalid requests', () => {
    const err = errorFromResponse(
      422,
      { reason: 'Invalid', message: 'm', details: { causes: [{ field: 'spec.replicas', message: 'must be 0 or 1' }] } },
      'apply',
    ) as InvalidError;
    assert.deepEqual(err.causes, [{ field: 'spec.replicas', message: 'must be 0 or 1' }]);
  });
});
