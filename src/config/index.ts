export { ConfigSchema, CONFIG_VERSION, type Config, type ConfigInput } from './schema';
export { loadConfig, parseMountOptions, validateConfig, readConfigFile } from './load';
export { parseSize, formatSize } from './sizes';
