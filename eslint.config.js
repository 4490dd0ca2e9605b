// ESLint for the TypeScript sources, type-aware (typescript-eslint's recommendedTypeChecked) so that it catches what
// tsc does not: promises nobody awaits or that are passed where a callback returns void, `any` leaking into typed
// code, unused variables and imports, template strings of objects. Formatting is Prettier's job (npm run format).
import js from "@eslint/js";
import stylistic from "@stylistic/eslint-plugin";
import { defineConfig } from "eslint/config";
import globals from "globals";
import tseslint from "typescript-eslint";

export default defineConfig(
  {
    // Build output, runtime data (.pipeline/, as in .gitignore), benchmark results, generated reports.
    ignores: ["dist/", ".pipeline/", "out/", "data/", "benchmarks/.venv/", "benchmarks/results/", "docs/"],
  },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    plugins: { "@stylistic": stylistic },
    rules: {
      // Prettier wraps code at 120 columns but never comments; long strings and URLs it leaves alone, and so does this.
      "@stylistic/max-len": [
        "error",
        {
          code: 120,
          ignoreUrls: true,
          ignoreStrings: true,
          ignoreTemplateLiterals: true,
          ignoreRegExpLiterals: true,
        },
      ],
      // `_`-prefixed names are deliberately unused (a destructured field left out, a callback's ignored argument).
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none", ignoreRestSiblings: true },
      ],
      // Template strings of numbers and booleans are how every message here is written; objects stay errors.
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
      // Effect.gen bodies are `function*` that often yield nothing (an Effect that only reads a service), and
      // `async` functions that return a value from a synchronous path keep one signature for callers: noise here.
      "require-yield": "off",
      "@typescript-eslint/require-await": "off",
      // Type-only imports marked as such, so that erasing types never drops a side-effect import (tsconfig's
      // verbatimModuleSyntax enforces the same at compile time; this one also fixes it).
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      // A promise's result left unused must be said so (`void p`), and a floating Effect is the same mistake.
      "@typescript-eslint/no-floating-promises": ["error", { ignoreVoid: true }],
      // Callbacks that return a promise where void is expected (event handlers, forEach) lose rejections; but
      // passing an async function as an object's property typed to return void is how hooks are declared here.
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { properties: false } }],
      // Rejecting with a value of unknown type forwards a caught error or an AbortSignal's reason unchanged; a string
      // or a plain object is still an error.
      "@typescript-eslint/prefer-promise-reject-errors": [
        "error",
        { allowThrowingAny: true, allowThrowingUnknown: true },
      ],
    },
  },
  {
    // Tests read JSON that the CLI and the benchmarks wrote (JSON.parse gives `any`) and poke at it: a missing field
    // fails the assertion that reads it, so the no-unsafe-* family only asks for casts that prove nothing.
    files: ["test/**/*.ts", "benchmarks/test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-return": "off",
    },
  },
  {
    // Plain JavaScript (bin/*.mjs, this file): not in tsconfig's program, so without type information.
    files: ["**/*.js", "**/*.mjs"],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
