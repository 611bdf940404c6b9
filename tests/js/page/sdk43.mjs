// matrix-js-sdk 43 for a Chromium page (it needs Promise.withResolvers, which Node 20 lacks):
// esbuild bundles this file into one script that puts the SDK on `window.sdk`
// (tests/harness/jssdk.py serves it from 127.0.0.1).

import * as sdk from "matrix-js-sdk-43";
import * as matrixrtc from "matrix-js-sdk-43/lib/matrixrtc/index.js";

window.sdk = { ...sdk, matrixrtc };
