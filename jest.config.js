/** Jest runs the TypeScript sources directly (swc strips types; `tsc` checks them). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/packages'],
  testMatch: ['**/src/**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  moduleNameMapper: { '^@switchboard/([a-z]+)$': '<rootDir>/packages/$1/src' },
  testTimeout: 30000,
  maxWorkers: 2,
};
