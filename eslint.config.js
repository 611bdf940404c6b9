// ESLint for the browser client and its unit tests (`make lint`): the recommended rules, with
// browser globals for web/static/js and Node's for the tests that run under `node --test`.

import js from "@eslint/js";
import globals from "globals";

const MATRIX_MESSAGE = "Matrix paths belong in matrix.js: add a method there and call it.";
const MATRIX_PATHS = [
  { selector: "Literal[value=/\\x2F_matrix\\x2F/]", message: MATRIX_MESSAGE },
  { selector: "TemplateElement[value.raw=/\\x2F_matrix\\x2F/]", message: MATRIX_MESSAGE },
];
// The provisioning API's routes (docs/API.md), with or without their /_guilds/v1 prefix.
const GUILDS_PATH = "/\\x2F_guilds\\x2F|^\\x2F(servers|invites|operations|templates)(\\x2F|$)/";
const GUILDS_MESSAGE = "Provisioning API paths belong in guilds-api.js: add a method there and call it.";
const GUILDS_PATHS = [
  { selector: `Literal[value=${GUILDS_PATH}]`, message: GUILDS_MESSAGE },
  { selector: `TemplateElement[value.raw=${GUILDS_PATH}]`, message: GUILDS_MESSAGE },
];

export default [
  {
    ignores: ["node_modules/", "tests/js/", "local/", "build/", "dist/", ".venv/", "test-artifacts/"],
  },
  js.configs.recommended,
  {
    files: ["web/static/js/**/*.js"],
    languageOptions: { ecmaVersion: 2023, sourceType: "module", globals: globals.browser },
  },
  // Matrix paths only in matrix.js, provisioning API paths only in guilds-api.js (issue 18): one
  // module owns each server's requests, so errcodes, retries and token handling are the same
  // everywhere. Other modules call their methods. (A rule's options are not merged across
  // blocks: each file gets the one list of selectors that applies to it.)
  {
    files: ["web/static/js/**/*.js"],
    ignores: ["web/static/js/matrix.js", "web/static/js/guilds-api.js"],
    rules: { "no-restricted-syntax": ["error", ...MATRIX_PATHS, ...GUILDS_PATHS] },
  },
  {
    files: ["web/static/js/guilds-api.js"],
    rules: { "no-restricted-syntax": ["error", ...MATRIX_PATHS] },
  },
  {
    files: ["web/static/js/matrix.js"],
    rules: { "no-restricted-syntax": ["error", ...GUILDS_PATHS] },
  },
  {
    files: ["tests/unit_js/**/*.mjs", "scripts/**/*.mjs", "eslint.config.js"],
    languageOptions: { ecmaVersion: 2023, sourceType: "module", globals: globals.node },
  },
  {
    rules: {
      // An unused catch binding or `_`-named argument says "deliberately ignored".
      "no-unused-vars": ["error", { argsIgnorePattern: "^_", caughtErrors: "none" }],
      eqeqeq: ["error", "smart"],
      "no-var": "error",
      "prefer-const": "error",
    },
  },
];
