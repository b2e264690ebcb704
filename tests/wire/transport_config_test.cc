// The [network] transport keys, read once for node.toml and quorum.toml: values, and the errors it names.
#include "quorate/wire/transport_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "support/test_util.h"

namespace quorate::wire {
namespace {

using ::testing::HasSubstr;

struct TransportRead {
  Result<config::TomlFile> file = Status::internal("unread");
  Result<TransportConfig> transport = Status::internal("unread");
};

// Writes `network` as the [network] section of d.toml in `dir` and reads it with "publish" as the caller's key.
TransportRead tc_read(const std::filesystem::path& dir, const std::string& network) {
  std::ofstream(dir / "d.toml") << "name = \"d\"\n[network]\n" << network;
  TransportRead r;
  r.file = config::TomlFile::read(dir / "d.toml");
  if (!r.file.ok()) return r;
  r.transport = read_transport_config(*r.file, *r.file->root().get("network")->as_table(), "network.", {"publish"});
  return r;
}

TEST(TransportConfig, ReadsEveryKeyAndResolvesPaths) {
  quorate::testing::ScratchDir dir;
  auto r = tc_read(dir.path(),
                   "publish = \"tcp://127.0.0.1:1\"\ncurve_secret_key = \"keys/d.curve.key\"\n"
                   "allowed_clients = [\"a.curve.pub\"]\nallow_insecure_remote = true\n");
  ASSERT_TRUE(r.transport.ok()) << r.transport.status().to_string();
  EXPECT_FALSE(r.transport->insecure);
  EXPECT_TRUE(r.transport->allow_insecure_remote);
  EXPECT_EQ(r.transport->curve_secret_key, r.file->base_dir() / "keys/d.curve.key");
  EXPECT_EQ(r.transport->allowed_clients, std::vector<std::string>{"a.curve.pub"});
  EXPECT_EQ(r.transport->base_dir, r.file->base_dir());
}

TEST(TransportConfig, ErrorsNameTheKeyAndItsLine) {
  quorate::testing::ScratchDir dir;
  // A key neither the transport's nor the caller's.
  auto unknown = tc_read(dir.path(), "insecure = true\ncurve_secret_ky = \"k\"\n");
  ASSERT_TRUE(unknown.transport.status().is_bad_input());
  EXPECT_THAT(unknown.transport.status().message(), HasSubstr("d.toml:4: unknown key 'network.curve_secret_ky'"));

  // Both plain TCP and a CURVE key: refused, naming both.
  auto both = tc_read(dir.path(), "insecure = true\ncurve_secret_key = \"d.curve.key\"\n");
  ASSERT_TRUE(both.transport.status().is_bad_input());
  EXPECT_THAT(both.transport.status().message(), HasSubstr("d.toml:4: 'network.curve_secret_key'"));
  EXPECT_THAT(both.transport.status().message(), HasSubstr("insecure = true"));

  // A mistyped value.
  auto mistyped = tc_read(dir.path(), "insecure = \"yes\"\n");
  EXPECT_THAT(mistyped.transport.status().message(), HasSubstr("d.toml:3: 'network.insecure' must be true or false"));

  // A key file that does not exist: read when the transport is made, and the error says where it was named.
  auto missing = tc_read(dir.path(), "\ncurve_secret_key = \"keys/none.curve.key\"\n");
  ASSERT_TRUE(missing.transport.ok()) << missing.transport.status().to_string();
  auto server = make_server_security(*missing.transport);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("d.toml:4: 'network.curve_secret_key'"));
  EXPECT_THAT(server.status().message(), HasSubstr("keys/none.curve.key"));
  auto client = make_client_security(*missing.transport, std::string(40, 'a'));
  ASSERT_FALSE(client.ok());
  EXPECT_THAT(client.status().message(), HasSubstr("d.toml:4: 'network.curve_secret_key'"));
}

// [limits]: defaults, values, and max_decision_bytes only where decisions are published.
TEST(TransportConfig, LimitsAreReadOnce) {
  quorate::testing::ScratchDir dir;
  std::ofstream(dir / "l.toml") << "[limits]\nmax_history_bytes = 4096\nmax_decision_bytes = 2048\n";
  auto f = config::TomlFile::read(dir / "l.toml");
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  const toml::table& t = *f->root().get("limits")->as_table();
  auto verifier = read_limits(*f, t, "limits.", true);
  ASSERT_TRUE(verifier.ok()) << verifier.status().to_string();
  EXPECT_EQ(verifier->max_history_bytes, 4096u);
  EXPECT_EQ(verifier->max_decision_bytes, 2048u);
  EXPECT_EQ(verifier->max_control_bytes, Limits{}.max_control_bytes);
  auto node = read_limits(*f, t, "limits.", false);
  EXPECT_THAT(node.status().message(), HasSubstr("l.toml:3: unknown key 'limits.max_decision_bytes'"));
}

}  // namespace
}  // namespace quorate::wire
