// Lint rules: ESLint's and typescript-eslint's recommended sets, plus a few
// that keep the code runnable by Node's type stripping.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', '.mesh/**'] },
  js.configs.recommended,
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } } },
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', URLSearchParams: 'readonly', fetch: 'readonly', AbortSignal: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', structuredClone: 'readonly', Response: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      // Enums and namespaces are not erasable: Node's type stripping rejects them.
      'no-restricted-syntax': ['error', { selector: 'TSEnumDeclaration', message: 'use a const object instead of an enum (Node type stripping)' }, { selector: 'TSModuleDeclaration[kind="namespace"]', message: 'namespaces are not erasable syntax' }],
      'no-console': 'off',
    },
  },
);
