/**
 * keepsConnection: whether pausing undici's parser is safe for a response, from its headers
 * alone (llhttp's keep-alive rule, without the HTTP version the handler never sees).
 */
import t from 'tap';
import { keepsConnection } from '../../../src/net/upstream-agent.js';

t.test('only an explicit keep-alive with a framed body keeps the connection', async (t) => {
  t.equal(keepsConnection({ connection: 'keep-alive', 'content-length': '10' }), true, 'keep-alive and a length');
  t.equal(keepsConnection({ connection: 'Keep-Alive', 'transfer-encoding': 'chunked' }), true, 'keep-alive and chunked, any case');
  t.equal(keepsConnection({ connection: 'close', 'content-length': '10' }), false, 'Connection: close');
  t.equal(keepsConnection({ connection: 'keep-alive, close', 'content-length': '10' }), false, 'close wins over keep-alive');
  t.equal(keepsConnection({ connection: 'keep-alive' }), false, 'no length and no chunked: the body ends at the close (RFC 9112 §6.3)');
  t.equal(keepsConnection({ connection: 'keep-alive', 'transfer-encoding': 'gzip' }), false, 'a coding that is not chunked last: close-delimited');
  t.equal(keepsConnection({ 'content-length': '10' }), false, 'no Connection header: could be HTTP/1.0 (python3 -m http.server), so closing');
  t.equal(keepsConnection({}), false, 'nothing at all');
});
