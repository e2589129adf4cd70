import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readKubeApiError } from '../src/index.ts';

// The shape @kubernetes/client-node 1.x throws: an ApiException with the HTTP code and the body
// (a Status as JSON text, or plain text from a proxy or an unknown path).
const apiException = (code: number, body: unknown) => Object.assign(new Error(`HTTP-Code: ${code}`), { code, body });

describe('readKubeApiError', () => {
  it('reads a Status body: its reason and message', () => {
    const status = JSON.stringify({
      kind: 'Status',
      reason: 'AlreadyExists',
      message: 'sandboxclaims "c" already exists',
      code: 409,
    });
    assert.deepEqual(readKubeApiError(apiException(409, status)), {
      kind: 'AlreadyExists',
      code: 409,
      reason: 'AlreadyExists',
      message: 'sandboxclaims "c" already exists',
      noSuchResource: false,
    });
    assert.equal(
      readKubeApiError(apiException(409, { reason: 'Conflict', message: 'the object has been modified' })).kind,
      'Conflict',
    );
  });
  it('tells the kinds apart by status', () => {
    const kinds = [
      [404, 'NotFound'],
      [401, 'Forbidden'],
      [403, 'Forbidden'],
      [422, 'Invalid'],
      [500, 'Other'],
    ] as const;
    for (const [code, kind] of kinds) assert.equal(readKubeApiError(apiException(code, '{}')).kind, kind, String(code));
    assert.equal(readKubeApiError(new Error('connect ECONNREFUSED 127.0.0.1:6443')).kind, 'Unreachable');
    assert.equal(
      readKubeApiError(new Error('connect ECONNREFUSED 127.0.0.1:6443')).message,
      'connect ECONNREFUSED 127.0.0.1:6443',
    );
  });
  it('knows a resource type the server does not serve from a missing object', () => {
    const gone = readKubeApiError(apiException(404, '404 page not found'));
    assert.equal(gone.noSuchResource, true);
    assert.equal(gone.message, '404 page not found');
    assert.equal(
      readKubeApiError(apiException(404, { reason: 'NotFound', message: 'pods "p" not found' })).noSuchResource,
      false,
    );
  });
});
