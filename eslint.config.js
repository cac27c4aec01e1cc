// ESLint: typescript-eslint's strict and stylistic type-checked rules over every TypeScript file, the
// recommended rules over the few plain .mjs scripts. Formatting is Prettier's (.prettierrc.json): no
// rule here is about layout. `npm run lint` runs both; `npm run lint:fix` applies both.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// The Node globals the .mjs scripts use (the `globals` package is not a dependency).
const nodeGlobals = Object.fromEntries(
  ['process', 'console', 'Buffer', 'URL', 'URLSearchParams', 'fetch', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'AbortController'].map(
    (name) => [name, 'readonly'],
  ),
);

export default defineConfig(
  { ignores: ['dist/', 'build/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.strictTypeChecked, tseslint.configs.stylisticTypeChecked],
    languageOptions: {
      // tsconfig.json covers src/; test/tsconfig.json (tsconfig.test.json) covers test/ and the src/ it imports; the few
      // scripts/ and bench/ .ts files are checked with tsconfig.test.json's options.
      parserOptions: {
        projectService: { allowDefaultProject: ['scripts/*.ts', 'bench/*.ts'], defaultProject: 'tsconfig.test.json' },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Async by contract, not by body: Fastify plugins are FastifyPluginAsync, the SQLite store's methods are async so the
      // PostgreSQL store fits the same interfaces, tap subtests are `async (t) => …`. Unawaited promises are no-floating-promises'.
      '@typescript-eslint/require-await': 'off',
      // tap queues `t.test(…)` subtests itself: the promise it returns is only there for those who want to wait.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] },
      ],
      // Numbers in messages and URLs are what they look like; objects, nullish and `any` still need an explicit String().
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // `if (bad) return drop(reason)` in a void function and `() => done()` callbacks are the house style.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true, ignoreVoidReturningFunctions: true }],
      // It asks for `x!` where `x as T` is written, which strict's no-non-null-assertion then forbids.
      '@typescript-eslint/non-nullable-type-assertion-style': 'off',
      // `const { secret: _secret, ...shown } = doc` is how a field is left out of a copy.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
      // `() => {}` is the no-op callback (a listener nobody needs, a rejection already reported elsewhere).
      '@typescript-eslint/no-empty-function': ['error', { allow: ['arrowFunctions'] }],
      // `header?.trim() || fallback`: an empty string falls through to the default on purpose.
      '@typescript-eslint/prefer-nullish-coalescing': ['error', { ignorePrimitives: { string: true } }],
      // Codecs, escapers and their tests match control bytes on purpose: that is what they look for.
      'no-control-regex': 'off',
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    ignores: ['web/static/**'],
    languageOptions: { globals: nodeGlobals },
  },
  {
    // The dashboard's one browser script, served as it is (no build step).
    files: ['web/static/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: Object.fromEntries(
        ['window', 'document', 'navigator', 'console', 'CustomEvent', 'Element', 'HTMLInputElement', 'EventSource', 'JSON'].map((name) => [name, 'readonly']),
      ),
    },
  },
);
