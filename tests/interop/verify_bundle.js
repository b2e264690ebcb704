// Verifies a quorate Sigstore bundle with @sigstore/verify (a verifier we did not write), using only a public key.
// Usage: node verify_bundle.js [--tamper] BUNDLE.json PUB.pem -> exit 0 verified, 1 not verified, 77 not installed.
// --tamper flips one byte of the payload first: the verifier must then refuse.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const path = require('path');

let bundleLib, verifyLib;
try {
  bundleLib = require(path.join(__dirname, 'node_modules', '@sigstore', 'bundle'));
  verifyLib = require(path.join(__dirname, 'node_modules', '@sigstore', 'verify'));
} catch (e) {
  console.log('SKIP: @sigstore/verify is not installed in tests/interop/node_modules (run scripts/bootstrap.sh)');
  process.exit(77);
}

const args = process.argv.slice(2);
const tamper = args[0] === '--tamper';
const [bundlePath, pubPath] = tamper ? args.slice(1) : args;
const json = JSON.parse(fs.readFileSync(bundlePath, 'utf8'));
if (tamper) {
  const payload = Buffer.from(json.dsseEnvelope.payload, 'base64');
  payload[payload.length - 2] ^= 1;
  json.dsseEnvelope.payload = payload.toString('base64');
}
const bundle = bundleLib.bundleFromJSON(json);
const publicKey = crypto.createPublicKey(fs.readFileSync(pubPath, 'utf8'));
const hint = bundle.verificationMaterial.content.publicKey.hint;

// No Fulcio, no Rekor, no TSA: trust is exactly the one public key, as a quorate roster gives it.
const trust = verifyLib.toTrustMaterial(
  {mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', certificateAuthorities: [],
   timestampAuthorities: [], tlogs: [], ctlogs: []},
  (keyHint) => {
    if (keyHint !== hint) throw new Error(`unknown key hint ${keyHint}`);
    return {publicKey, validFor: () => true};
  });
const verifier = new verifyLib.Verifier(trust, {tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0});
try {
  const signer = verifier.verify(verifyLib.toSignedEntity(bundle));
  const statement = JSON.parse(Buffer.from(bundle.content.dsseEnvelope.payload).toString('utf8'));
  console.log(`verified: keyid ${signer.identity?.hint ?? hint}, subject ${statement.subject[0].name} ` +
              `sha256:${statement.subject[0].digest.sha256}`);
  process.exit(0);
} catch (e) {
  console.log(`not verified: ${e.name}: ${e.message}`);
  process.exit(1);
}
