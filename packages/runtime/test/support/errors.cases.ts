// Requests the agent must refuse, and proof that it keeps serving after each (suite.ts).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { json, type TestAgent } from './harness.ts';

const jsonPost = (a: TestAgent, path: string, body: string) =>
  a.send('POST', path, { body, headers: { 'content-type': 'application/json' } });

async function refused(res: Awaited<ReturnType<TestAgent['send']>>, status: number, reason: string): Promise<string> {
  const body = await json(res);
  assert.deepEqual([res.status, body.reason], [status, reason], JSON.stringify(body));
  assert.equal(typeof body.detail, 'string');
  return body.detail as string;
}

export function errorCases(agent: () => TestAgent): void {
  it('answers 400 MalformedJSON to a body that is not JSON', async () => {
    for (const path of ['/execute', '/v1/exec', '/v1/processes'])
      await refused(await jsonPost(agent(), path, '{"command": "echo'), 400, 'MalformedJSON');
    await refused(await jsonPost(agent(), '/execute', ''), 400, 'MalformedJSON');
  });

  it('answers 422 Invalid to JSON of the wrong shape, naming the field', async () => {
    assert.match(await refused(await jsonPost(agent(), '/execute', '{"command": 5}'), 422, 'Invalid'), /command/);
    assert.match(await refused(await jsonPost(agent(), '/execute', '{}'), 422, 'Invalid'), /command/);
    assert.match(await refused(await jsonPost(agent(), '/execute', '[]'), 422, 'Invalid'), /body/);
    assert.match(
      await refused(await jsonPost(agent(), '/v1/exec', '{"command": "true", "timeoutMs": -1}'), 422, 'Invalid'),
      /timeoutMs/,
    );
    assert.match(
      await refused(
        await jsonPost(agent(), '/v1/exec', JSON.stringify({ command: 'x'.repeat(1024 * 1024 + 1) })),
        422,
        'Invalid',
      ),
      /command/,
    );
    const env = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`V${i}`, '1']));
    assert.match(
      await refused(await jsonPost(agent(), '/execute', JSON.stringify({ command: 'true', env })), 422, 'Invalid'),
      /256 environment/,
    );
    assert.match(
      await refused(
        await jsonPost(agent(), '/execute', JSON.stringify({ command: 'true', env: { 'A=B': '1' } })),
        422,
        'Invalid',
      ),
      /env/,
    );
  });

  it('answers 413 to a JSON body over its limit, announced or not', async () => {
    const big = JSON.stringify({ command: 'true', stdin: 'x'.repeat(21 * 1024 * 1024) });
    await refused(await jsonPost(agent(), '/execute', big), 413, 'PayloadTooLarge');
    async function* unannounced() {
      for (let i = 0; i < big.length; i += 1 << 20) yield Buffer.from(big.slice(i, i + (1 << 20)));
    }
    await refused(
      await agent().send('POST', '/execute', { body: unannounced(), headers: { 'content-type': 'application/json' } }),
      413,
      'PayloadTooLarge',
    );
  });

  it('answers 404 NotFound for an unknown process, on every process route', async () => {
    const a = agent();
    await refused(await a.send('GET', '/v1/processes/nope'), 404, 'NotFound');
    await refused(await a.send('GET', '/v1/processes/nope/output?follow=1'), 404, 'NotFound');
    await refused(await a.send('POST', '/v1/processes/nope/stdin', { body: 'x' }), 404, 'NotFound');
    await refused(await jsonPost(a, '/v1/processes/nope/signal', '{"signal":"SIGTERM"}'), 404, 'NotFound');
    await refused(await a.send('DELETE', '/v1/processes/nope'), 404, 'NotFound');
  });

  it('answers 404 NotFound for an unknown route and 422 for an unknown signal', async () => {
    await refused(await agent().send('GET', '/no/such/route'), 404, 'NotFound');
    await refused(await jsonPost(agent(), '/v1/processes/main/signal', '{"signal":"SIGFOO"}'), 422, 'Invalid');
  });

  it('answers 404 NotFound for a working directory that does not exist', async () => {
    await refused(await jsonPost(agent(), '/execute', '{"command":"pwd","cwd":"no/such/dir"}'), 404, 'NotFound');
  });

  it('still serves after everything above', async () => {
    assert.deepEqual(await json(await agent().send('GET', '/')), {
      status: 'ok',
      message: 'Sandbox Runtime is active.',
    });
    const r = await json(await jsonPost(agent(), '/execute', '{"command":"echo still here"}'));
    assert.deepEqual(r, { stdout: 'still here\n', stderr: '', exit_code: 0 });
  });
}
