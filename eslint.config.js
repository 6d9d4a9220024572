// ESLint flat config: @eslint/js recommended + typescript-eslint recommended over the
// sources, tests, bin stubs, bench and examples. Rules turned off or tuned are listed
// with the reason; everything else is as recommended.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** The Node.js globals the plain JS files use (the `globals` package is not a dependency). */
const node = Object.fromEntries(['process', 'console', 'Buffer', 'URL', 'setTimeout', 'clearTimeout', 'setInterval',
  'clearInterval', 'setImmediate', 'queueMicrotask', 'performance', 'AbortController', 'TextDecoder', 'TextEncoder',
  'structuredClone', 'fetch'].map((g) => [g, 'readonly']));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/native/build/**', 'coverage/**', '.tap/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,js,mjs}'],
    languageOptions: { globals: node },
    rules: {
      // `_`-prefixed names are deliberately unused (destructuring to drop a field, callback arity).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
);
