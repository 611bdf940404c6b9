// Runs one matrix-js-sdk 37.5 scenario in Node for the Python tests (tests/harness/jssdk.py).
//
// Usage: node scenario.mjs <name>, with {"homeserver", "user_id", "access_token", "device_id",
// ...} as JSON on stdin. Prints {"result": …, "warnings": […]} as JSON on stdout; everything the
// SDK logs goes to stderr, its warnings are also collected in "warnings".

import { readFileSync } from "node:fs";

const warnings = [];
const toStderr = (...args) => process.stderr.write(args.map(String).join(" ") + "\n");
console.log = console.info = console.debug = console.trace = toStderr;
console.warn = console.error = (...args) => {
  warnings.push(args.map(String).join(" "));
  toStderr(...args);
};

const { createClient } = await import("matrix-js-sdk");
const scenarios = (await import("./scenarios.mjs")).scenarios;

const name = process.argv[2];
const input = JSON.parse(readFileSync(0, "utf8"));
if (!(name in scenarios)) {
  process.stderr.write(`no scenario named ${name}; known: ${Object.keys(scenarios).join(", ")}\n`);
  process.exit(2);
}
const client = createClient({
  baseUrl: input.homeserver,
  userId: input.user_id,
  accessToken: input.access_token,
  deviceId: input.device_id,
});
let answer;
try {
  answer = JSON.stringify({ result: await scenarios[name](client, input), warnings }) + "\n";
} finally {
  client.stopClient();
}
// A started client leaves timers behind (sync, keep-alives): exit once the answer is out.
process.stdout.write(answer, () => process.exit(0));
