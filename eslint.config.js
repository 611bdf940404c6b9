// ESLint for the browser client and its unit tests (`make lint`): the recommended rules, with
// browser globals for web/static/js and Node's for the tests that run under `node --test`.

import js from "@eslint/js";
import globals from "globals";

export default [
  {
    ignores: ["node_modules/", "tests/js/", "local/", "build/", "dist/", ".venv/", "test-artifacts/"],
  },
  js.configs.recommended,
  {
    files: ["web/static/js/**/*.js"],
    languageOptions: { ecmaVersion: 2023, sourceType: "module", globals: globals.browser },
  },
  {
    // Matrix paths only in matrix.js (issue 18): one module owns every homeserver request, so its
    // errcodes, retries and token handling are the same everywhere. Other modules call its methods.
    files: ["web/static/js/**/*.js"],
    ignores: ["web/static/js/matrix.js"],
    rules: {
      "no-restricted-syntax": [
        "error",
        {
          selector: "Literal[value=/\\x2F_matrix\\x2F/]",
          message: "Matrix paths belong in matrix.js: add a method there and call it.",
        },
        {
          selector: "TemplateElement[value.raw=/\\x2F_matrix\\x2F/]",
          message: "Matrix paths belong in matrix.js: add a method there and call it.",
        },
      ],
    },
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
