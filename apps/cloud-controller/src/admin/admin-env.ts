import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface EnvCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  endpoint: string;
}

const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;

/** Shell lines that configure aws-cli, boto3 and the SDKs for an account. */
export function exportLines(c: EnvCredentials): string {
  return (
    [
      `export AWS_ACCESS_KEY_ID=${q(c.accessKeyId)}`,
      `export AWS_SECRET_ACCESS_KEY=${q(c.secretAccessKey)}`,
      `export AWS_DEFAULT_REGION=${q(c.region)}`,
      `export EC2_URL=${q(c.endpoint)}`,
      // read by aws-cli v1 >= 1.29, v2 >= 2.13, boto3 >= 1.28 (older v2: `--endpoint-url "$EC2_URL"`)
      `export AWS_ENDPOINT_URL_EC2=${q(c.endpoint)}`,
    ].join('\n') + '\n'
  );
}

/** Writes `admin.env` with mode 0600 (also when it already existed with other bits). */
export function writeEnvFile(path: string, c: EnvCredentials): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `# Koala administrator credentials: source this file (. ${path})\n${exportLines(c)}`, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** The key id and secret in an existing env file, or undefined. */
export function readEnvFile(path: string): { accessKeyId: string; secretAccessKey: string } | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const get = (name: string) => {
    const m = new RegExp(`^export ${name}='?([^'\\n]*)'?$`, 'm').exec(text);
    return m?.[1];
  };
  const accessKeyId = get('AWS_ACCESS_KEY_ID');
  const secretAccessKey = get('AWS_SECRET_ACCESS_KEY');
  return accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined;
}
