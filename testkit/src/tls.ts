/**
 * Throwaway TLS material for tests: a CA and a server certificate for `localhost` and
 * 127.0.0.1 signed by it, made with the openssl CLI (check `requireService("openssl")` first).
 *
 *   ca.pem / ca.key          the CA clients trust (caFile)
 *   server.pem / server.key  what the server presents (certFile, keyFile)
 *   other-ca.pem             a CA that signed nothing here: a client trusting only it must refuse
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TestCertificates {
  caFile: string;
  certFile: string;
  keyFile: string;
  otherCaFile: string;
}

/** Writes the files into `dir` (which must exist) and returns their paths. Valid for one day. */
export function issueTestCertificates(dir: string): TestCertificates {
  const f = (n: string) => join(dir, n);
  const ssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
  const ca = (name: string, cn: string) =>
    ssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      `/CN=${cn}`,
      "-keyout",
      f(`${name}.key`),
      "-out",
      f(`${name}.pem`),
    );
  ca("ca", "coldtrace-test-ca");
  ca("other-ca", "coldtrace-other-ca");
  ssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-keyout",
    f("server.key"),
    "-out",
    f("server.csr"),
  );
  writeFileSync(f("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  ssl(
    "x509",
    "-req",
    "-in",
    f("server.csr"),
    "-CA",
    f("ca.pem"),
    "-CAkey",
    f("ca.key"),
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    f("server.ext"),
    "-out",
    f("server.pem"),
  );
  return {
    caFile: f("ca.pem"),
    certFile: f("server.pem"),
    keyFile: f("server.key"),
    otherCaFile: f("other-ca.pem"),
  };
}
