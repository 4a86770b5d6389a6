/**
 * Throw-away certificates for TLS tests, made with the system's openssl: a CA, a server
 * certificate for `localhost`/127.0.0.1, a client certificate, and a second CA that signed nothing.
 *
 * @module
 */

/** Files of a throw-away CA and a server certificate for `localhost`/127.0.0.1, made with openssl. */
export interface TestCertificates {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** A client certificate and key signed by the same CA. */
  clientCertFile: string;
  clientKeyFile: string;
  /** A CA that signed nothing here, to test verification failures. */
  otherCaFile: string;
}

/** Generates {@linkcode TestCertificates} into `dir` with the system's openssl. */
export async function makeCertificates(dir: string): Promise<TestCertificates> {
  const run = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    if (!out.success) {
      throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
    }
  };
  const ca = async (name: string) => {
    await run(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.pem`,
    );
  };
  const signed = async (name: string, cn: string, ext: string) => {
    await run(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      `/CN=${cn}`,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
    );
    await Deno.writeTextFile(`${dir}/${name}.ext`, ext);
    await run(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.pem`,
    );
  };
  await ca("ca");
  await ca("other-ca");
  await signed("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  await signed("client", "sluice-test-client", "extendedKeyUsage=clientAuth\n");
  return {
    caFile: `${dir}/ca.pem`,
    certFile: `${dir}/server.pem`,
    keyFile: `${dir}/server.key`,
    clientCertFile: `${dir}/client.pem`,
    clientKeyFile: `${dir}/client.key`,
    otherCaFile: `${dir}/other-ca.pem`,
  };
}
