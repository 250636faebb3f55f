// Public surface of the server package: the CLI entry point and the configuration loader.
export { main } from './main';
export { parseConfigFile } from './config-file';
export { loadConfig, usage, ConfigError, type Config, type LoadResult, type LogLevel, type Role } from './config';
