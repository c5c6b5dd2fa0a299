export { PeerTransport, DEFAULT_PEER_PORT, agentTlsClient, readTlsMaterial } from './transport';
export type { PeerTransportOptions, TlsFiles, TlsMaterial } from './transport';
export type { PeerStats } from './peer_stream';
export type { Logger, LogFn } from './logger';
export { encodeMessageFrame, FrameDecoder, FrameKind, FrameError, DEFAULT_MAX_FRAME_BYTES } from './frame';
export { decodeMessage, encodedMessageSize, encodeMessageInto, CodecError } from './codec';
export { PROTOCOL_VERSION } from './handshake';
