// Signatures per second through a PKCS#11 token (SoftHSM2, in its own temporary token directory) against the
// same algorithm with a key file (the baseline), both through attest::Signer, Ed25519 and P-256. Rounds alternate
// file and token (warm-up first), each a fixed wall time; figures are min/median/max over rounds with CPU seconds
// (SoftHSM runs in-process, so its work is in ours) and the load average (bench_stats.h).
// Usage: pkcs11_bench [SECONDS_PER_RUN [ROUNDS]]   (defaults 1 and 5)
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

struct Run {
  double per_second = 0, cpu = 0;
};

Run measure(const Signer& s, double seconds) {
  std::string message(400, 'm');  // about the size of a DSSE PAE
  double w0 = bench::wall_seconds(), c0 = bench::cpu_seconds();
  long n = 0;
  while (bench::wall_seconds() - w0 < seconds) {
    message[n % message.size()] = static_cast<char>(n);
    if (!s.sign(message).ok()) {
      std::fprintf(stderr, "signing failed\n");
      std::exit(1);
    }
    ++n;
  }
  double w = bench::wall_seconds() - w0;
  return {n / w, bench::cpu_seconds() - c0};
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
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
      "pkcs11_bench: signatures/s, key file (baseline) vs SoftHSM2 token, %d rounds of %.1fs each, alternating\n",
      rounds, seconds);
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
    measure(*file, seconds / 4);  // warm-up
    measure(**token, seconds / 4);
    std::vector<double> file_rate, token_rate, file_cpu, token_cpu, ratios;
    for (int r = 0; r < rounds; ++r) {
      Run a = measure(*file, seconds);
      Run b = measure(**token, seconds);
      file_rate.push_back(a.per_second);
      token_rate.push_back(b.per_second);
      file_cpu.push_back(a.cpu);
      token_cpu.push_back(b.cpu);
      ratios.push_back(b.per_second / a.per_second);
    }
    std::printf("%s:\n  key file: %s, CPU %s per run\n  token:    %s, CPU %s per run\n", key_type_name(type),
                bench::describe(file_rate, "/s").c_str(), bench::describe(file_cpu, "s", "%.2f").c_str(),
                bench::describe(token_rate, "/s").c_str(), bench::describe(token_cpu, "s", "%.2f").c_str());
    bench::print_ratio("token/file", ratios);
  }
  std::printf("load average: %s\n", bench::load_average().c_str());
  if (std::system(("rm -rf " + dir).c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir.c_str());
  return rc;
}
