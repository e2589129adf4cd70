// Pure: the server name (SNI) of a TLS ClientHello, from the first bytes a client sends. The
// egress proxy reads it before anything reaches the destination, and passes the bytes on as they
// came (it does not terminate TLS unless it adds a credential).

/** At most this much is read looking for a ClientHello (several records when it is large). */
export const MAX_HELLO_BYTES = 64 * 1024;

export type HelloResult =
  | { kind: 'incomplete' }
  | { kind: 'not-tls' }
  /** A ClientHello; `serverName` when it names one (host_name type). */
  | { kind: 'hello'; serverName?: string };

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;

/** Reads the ClientHello in `buf`, reassembling it from consecutive handshake records. */
export function parseClientHello(buf: Buffer): HelloResult {
  // The handshake message, gathered from records.
  const parts: Buffer[] = [];
  let have = 0;
  let off = 0;
  let need: number | undefined;
  while (need === undefined || have < need) {
    if (buf.length < off + 5) return buf.length >= MAX_HELLO_BYTES ? { kind: 'not-tls' } : { kind: 'incomplete' };
    if (buf[off] !== RECORD_HANDSHAKE || buf[off + 1] !== 0x03) return { kind: 'not-tls' };
    const len = buf.readUInt16BE(off + 3);
    if (buf.length < off + 5 + len) return buf.length >= MAX_HELLO_BYTES ? { kind: 'not-tls' } : { kind: 'incomplete' };
    parts.push(buf.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (need === undefined) {
      const first = Buffer.concat(parts);
      if (first.length < 4) continue;
      if (first[0] !== HANDSHAKE_CLIENT_HELLO) return { kind: 'not-tls' };
      need = 4 + ((first[1]! << 16) | (first[2]! << 8) | first[3]!);
      if (need > MAX_HELLO_BYTES) return { kind: 'not-tls' };
    }
  }
  const hs = Buffer.concat(parts).subarray(4, need);
  try {
    return { kind: 'hello', serverName: serverNameOf(hs) };
  } catch {
    return { kind: 'not-tls' };
  }
}

/** The host_name of the server_name extension of a ClientHello's body (RFC 6066), if any. */
function serverNameOf(b: Buffer): string | undefined {
  let p = 2 + 32; // client_version, random
  p += 1 + b[p]!; // session_id
  p += 2 + b.readUInt16BE(p); // cipher_suites
  p += 1 + b[p]!; // compression_methods
  if (p + 2 > b.length) return undefined; // no extensions
  const end = p + 2 + b.readUInt16BE(p);
  p += 2;
  while (p + 4 <= end) {
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    const data = b.subarray(p + 4, p + 4 + len);
    if (type === EXT_SERVER_NAME) {
      let q = 2; // server_name_list length
      while (q + 3 <= data.length) {
        const nameType = data[q]!;
        const nameLen = data.readUInt16BE(q + 1);
        if (nameType === 0)
          return data
            .subarray(q + 3, q + 3 + nameLen)
            .toString('ascii')
            .toLowerCase();
        q += 3 + nameLen;
      }
      return undefined;
    }
    p += 4 + len;
  }
  return undefined;
}
