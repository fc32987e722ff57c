/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // Typechecking is a separate step of the test command; with isolatedModules in tsconfig.json
    // ts-jest only strips types (transpileModule), which keeps the suite fast.
    '^.+\\.ts$': 'ts-jest',
    // quick-lru 7 is ESM-only. The daemon loads it with require(esm) (Node ≥ 20.19), but jest's module
    // runtime is CommonJS and cannot: ts-jest transpiles that one package to CommonJS (transpile only,
    // no type check) and transformIgnorePatterns below lets it through.
    '/node_modules/quick-lru/.+\\.js$': [
      'ts-jest',
      {
        tsconfig: { allowJs: true, module: 'commonjs', moduleResolution: 'bundler', isolatedModules: true },
      },
    ],
  },
  transformIgnorePatterns: ['/node_modules/(?!quick-lru/)'],
  testTimeout: 120000,
  setupFilesAfterEnv: ['<rootDir>/tests/helpers/byte-equality.ts'],
  // Mount tests leave nothing behind on failure only if every suite cleans up; this catches stragglers.
  globalTeardown: '<rootDir>/tests/helpers/global-teardown.js',
};
