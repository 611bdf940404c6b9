// What a call panel and the tests read of one peer's connection: the same for a mesh peer
// (calls/group.js) and a Janus subscriber (calls/janus.js), which has nothing to send.

/**
 * `pc` is the peer's RTCPeerConnection on the mesh; on the SFU, the view of the one subscriber
 * connection that holds only its own feed's streams (calls/janus.js).
 * @param {{userId: string, deviceId: string, state: string,
 *   pc: {getStats(): Promise<RTCStatsReport | Map<string, any>>, getSenders(): RTCRtpSender[]} | null}} peer
 */
export async function peerStats(peer) {
  const entry = {
    userId: peer.userId,
    deviceId: peer.deviceId,
    state: peer.state,
    audioBytesReceived: 0,
    videoFramesDecoded: 0,
    videoTracksSent: 0,
    videoBytesSent: 0,
    // What our encoder sends this peer now, and the budget it was given.
    videoSentWidth: 0,
    videoSentHeight: 0,
    videoMaxBitrate: null,
  };
  if (!peer.pc) return entry;
  const report = await peer.pc.getStats();
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") entry.audioBytesReceived += s.bytesReceived ?? 0;
    if (s.type === "inbound-rtp" && s.kind === "video") entry.videoFramesDecoded += s.framesDecoded ?? 0;
    if (s.type === "outbound-rtp" && s.kind === "video") {
      entry.videoBytesSent += s.bytesSent ?? 0;
      entry.videoSentWidth = s.frameWidth ?? entry.videoSentWidth;
      entry.videoSentHeight = s.frameHeight ?? entry.videoSentHeight;
    }
  });
  const videoSenders = peer.pc.getSenders().filter((s) => s.track?.kind === "video");
  entry.videoTracksSent = videoSenders.length;
  entry.videoMaxBitrate = videoSenders[0]?.getParameters().encodings?.[0]?.maxBitrate ?? null;
  return entry;
}
