// Signatures per second through a PKCS#11 token (SoftHSM2, in its own temporary token directory) against the
// same algorithm with a key file (the baseline), both through attest::Signer, Ed25519 and P-256. Runs alternate
// token and file (a warm-up pair, then PAIRS pairs), each a fixed wall time, printed through bench_stats.h:
// min/median/max of wall and CPU seconds (SoftHSM runs in-process, so its work is in ours) and of the rates, the
// per-pair ratios token/file, the load average, flags for impossible runs and noise.
// Usage: pkcs11_bench [SECONDS_PER_RUN [PAIRS]]   (defaults 1 and 5)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "bench_stats.h"
#include "quorate/attest/keys.h"
#include "quorate/attest/pkcs11.h"

namespace {

using namespace quorate::attest;

bench::Run measure(const Signer& s, double seconds) {
  std::string message(400, 'm');  // about the size of a DSSE PAE
  bench::Timer timer;
  double w0 = bench::wall_seconds();
  long n = 0;
  while (bench::wall_seconds() - w0 < seconds) {
    message[n % message.size()] = static_cast<char>(n);
    if (!s.sign(message).ok()) {
      std::fprintf(stderr, "signing failed\n");
      std::exit(1);
    }
    ++n;
  }
  return timer.stop(static_cast<double>(n));
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  int pairs = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
  char tmpl[] = "/tmp/quorate-pkcs11-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 2;
  std::string dir = tmpl;
  std::string conf = dir + "/softhsm2.conf";
  FILE* f = std::fopen(conf.c_str(), "w");
  std::fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", dir.c_str());
  std::fclose(f);
  setenv("SOFTHSM2_CONF", conf.c_str(), 1);
  if (std::system("softhsm2-util --init-token --free --label bench --so-pin 1234 --pin 5678 >/dev/null") != 0) {
    std::fprintf(stderr, "softhsm2-util failed (apt-get install softhsm2)\n");
    return 2;
  }
  std::printf(
      "pkcs11_bench: signatures/s, SoftHSM2 token against a key file (the baseline), runs of %.1f s; load "
      "average at the start %s\n",
      seconds, bench::load_average().c_str());
  int rc = 0;
  for (KeyType type : {KeyType::kEd25519, KeyType::kEcdsaP256}) {
    std::string uri = std::string("pkcs11:token=bench;object=") + key_type_name(type) +
                      "?module-path=/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so&pin-value=5678";
    auto gen = pkcs11_generate_key(uri, type);
    auto token = gen.ok() ? open_pkcs11_signer(uri) : quorate::Result<std::unique_ptr<Signer>>(gen.status());
    if (!token.ok()) {
      std::fprintf(stderr, "%s\n", token.status().to_string().c_str());
      return 2;
    }
    auto file = signer_from_pem(generate_key(type).value().private_pem).value();
    auto cmp = bench::alternate(
        std::string(key_type_name(type)) + ": signing through the SoftHSM2 token against a key file", "SoftHSM2 token",
        [&] { return measure(**token, seconds); }, "key file", [&] { return measure(*file, seconds); }, pairs, 1,
        "signatures", bench::where(dir) + " (the token)");
    bench::report(cmp);
  }
  if (std::system(("rm -rf " + dir).c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir.c_str());
  return rc;
}
