// @peculiar/x509 (X.509 certificates and PKCS#10 CSRs over WebCrypto), loaded
// after the Reflect metadata API its dependency tsyringe needs at load time.
// Import x509 from here, never from the package directly.
import 'reflect-metadata';

export * from '@peculiar/x509';
