import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TlsFiles } from '../../../agent/transport/transport';

export interface TestPki {
  dir: string;
  /** Node certificates signed by the cluster CA. */
  node: (name: string) => TlsFiles;
  /** A certificate signed by another CA, presented with the cluster CA as trust anchor. */
  foreign: TlsFiles;
  remove(): void;
}

function openssl(cwd: string, args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

function makeLeaf(dir: string, name: string, ca: string): void {
  fs.writeFileSync(
    path.join(dir, `${name}.ext`),
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n' +
      'extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
  );
  openssl(dir, [
    'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`,
  ]);
  openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`,
  ]);
}

/** A cluster CA with node1..nodeN certificates (N = 3 unless given), and a stranger's certificate from another CA. */
export function makeTestPki(nodes = 3): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgraft-tls-'));
  makeCa(dir, 'cluster-ca');
  makeCa(dir, 'other-ca');
  for (let i = 1; i <= nodes; i++) makeLeaf(dir, `node${i}`, 'cluster-ca');
  makeLeaf(dir, 'stranger', 'other-ca');
  const files = (name: string, ca = 'cluster-ca'): TlsFiles => ({
    certFile: path.join(dir, `${name}.crt`),
    keyFile: path.join(dir, `${name}.key`),
    caFile: path.join(dir, `${ca}.crt`),
  });
  return {
    dir,
    node: (name) => files(name),
    foreign: files('stranger'),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
