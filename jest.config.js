/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // Typechecking is a separate step of the test command; with isolatedModules in tsconfig.json
    // ts-jest only strips types (transpileModule), which keeps the suite fast.
    '^.+\\.ts$': 'ts-jest',
  },
  testTimeout: 120000,
  // Mount tests leave nothing behind on failure only if every suite cleans up; this catches stragglers.
  globalTeardown: '<rootDir>/tests/helpers/global-teardown.js',
};
