// matrix-js-sdk 37.5 for a Chromium page, where it has WebRTC (Node has none): esbuild bundles
// this file into one script that puts the SDK on `window.sdk` (tests/harness/jssdk.py serves
// it from 127.0.0.1). 37.x speaks only the unstable `org.matrix.msc3077.sdp_stream_metadata`.

import * as sdk from "matrix-js-sdk";

window.sdk = sdk;
