// Reads an Envoy v3 Bootstrap (YAML or JSON, like `envoy -c`) into the
// decoded shape the proxy uses; errors name the file and field.

import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { TYPE_URL_PREFIX } from '../xds/index.ts';
import { decodeJson } from './config/proto-json.ts';
import { ProxyConfigError, ProxyErrorCode } from './errors.ts';

export const BOOTSTRAP_TYPE_URL = `${TYPE_URL_PREFIX}envoy.config.bootstrap.v3.Bootstrap`;

/** The decoded Bootstrap: snake_case, defaults filled. */
export type DecodedBootstrap = Record<string, any>;

export function parseBootstrap(text: string, source = 'bootstrap'): DecodedBootstrap {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new ProxyConfigError(`${source}: not valid YAML/JSON: ${(err as Error).message}`, ProxyErrorCode.BOOTSTRAP);
  }
  return decodeJson(BOOTSTRAP_TYPE_URL, doc, `${source}: Bootstrap`);
}

export function loadBootstrapFile(file: string): DecodedBootstrap {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ProxyConfigError(`cannot read bootstrap ${file}: ${(err as Error).message}`, ProxyErrorCode.BOOTSTRAP);
  }
  return parseBootstrap(text, file);
}
