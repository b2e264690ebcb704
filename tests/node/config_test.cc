// node.toml: defaults, relative paths, unknown keys and wrong types named.
#include "quorate/node/config.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <fstream>

#include "support/test_util.h"

namespace quorate::node {
namespace {

std::filesystem::path write_config(const std::string& text) {
  static testing::ScratchDir dir;
  auto path = dir / "node.toml";
  std::ofstream(path) << text;
  return path;
}

TEST(NodeConfig, MinimalConfigGetsDefaults) {
  auto path = write_config("node_id = \"n1\"\ndata_dir = \"data\"\nsigning_key = \"keys/n1.pem\"\n");
  auto c = load_node_config(path);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->node_id, "n1");
  EXPECT_EQ(c->data_dir, path.parent_path() / "data");
  EXPECT_EQ(c->signing_key, path.parent_path() / "keys/n1.pem");
  EXPECT_EQ(c->work_dir, path.parent_path() / "data" / "work");
  EXPECT_EQ(c->max_queue, 16u);
  EXPECT_FALSE(c->transport.insecure);
  EXPECT_EQ(c->bwrap, "/usr/bin/bwrap");
}

TEST(NodeConfig, EverySectionParses) {
  auto path = write_config(R"(
node_id = "n1"
data_dir = "/var/lib/n1"
signing_key = "/etc/n1.pem"
[network]
publish = "tcp://127.0.0.1:7001"
control = "tcp://127.0.0.1:7002"
insecure = true
heartbeat_interval_ms = 200
allowed_clients = ["a.curve.pub"]
[queue]
max_pending = 2
history_batch = 10
[limits]
max_attestation_bytes = 2048
[build]
sandbox = "none"
bwrap = "tools/bwrap"
path = ["/usr/bin", "/bin"]
)");
  auto c = load_node_config(path);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->publish_endpoint, "tcp://127.0.0.1:7001");
  EXPECT_TRUE(c->transport.insecure);
  EXPECT_EQ(c->heartbeat_interval_ms, 200);
  EXPECT_EQ(c->max_queue, 2u);
  EXPECT_EQ(c->limits.max_attestation_bytes, 2048u);
  EXPECT_EQ(c->sandbox, "none");
  EXPECT_EQ(c->bwrap, path.parent_path() / "tools/bwrap");
  EXPECT_EQ(c->build_path.size(), 2u);
}

TEST(NodeConfig, UnknownKeyIsNamedWithItsLine) {
  auto path = write_config("node_id = \"n1\"\ndata_dir = \"d\"\nsigning_key = \"k\"\n[network]\npublsh = \"x\"\n");
  auto c = load_node_config(path);
  ASSERT_TRUE(c.status().is_bad_input());
  EXPECT_NE(c.status().message().find("network.publsh"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find(":5"), std::string::npos) << c.status().message();
}

TEST(NodeConfig, MissingAndMistypedKeysAreErrors) {
  EXPECT_NE(
      load_node_config(write_config("data_dir = \"d\"\nsigning_key = \"k\"\n")).status().message().find("node_id"),
      std::string::npos);
  auto c = load_node_config(write_config("node_id = 3\ndata_dir = \"d\"\nsigning_key = \"k\"\n"));
  EXPECT_NE(c.status().message().find("must be a string"), std::string::npos);
  auto q = load_node_config(
      write_config("node_id = \"n\"\ndata_dir = \"d\"\nsigning_key = \"k\"\n[queue]\nmax_pending = -1\n"));
  EXPECT_TRUE(q.status().is_bad_input());
}

// Issue 18: builder_id is runDetails.builder.id, so it must be a URI; an empty one means the default.
TEST(NodeConfig, BuilderIdThatIsNotAUriIsRefused) {
  const std::string rest = "data_dir = \"d\"\nsigning_key = \"k\"\nnode_id = \"node-a\"\n";
  for (const char* id : {"node-a", "https://builders.example.org/a b"}) {
    auto c = load_node_config(write_config("builder_id = \"" + std::string(id) + "\"\n" + rest));
    ASSERT_FALSE(c.ok()) << id;
    EXPECT_TRUE(c.status().is_bad_input()) << c.status().to_string();
    EXPECT_NE(c.status().message().find("'builder_id' is not a URI"), std::string::npos) << c.status().to_string();
  }
  auto uri = load_node_config(write_config("builder_id = \"https://builders.example.org/a\"\n" + rest));
  ASSERT_TRUE(uri.ok()) << uri.status().to_string();
  EXPECT_EQ(uri->builder_id, "https://builders.example.org/a");
  auto empty = load_node_config(write_config("builder_id = \"\"\n" + rest));
  ASSERT_TRUE(empty.ok()) << empty.status().to_string();
  EXPECT_EQ(empty->builder_id, "");
}

// A client allowed to submit builds names the repository: without a list, any (a local path on the node's
// host too, or a URL its credentials reach); with build.repositories, only what lies under an entry.
TEST(NodeConfig, RepositoriesListWhatRequestsMayName) {
  auto path = write_config(
      "node_id = \"n1\"\ndata_dir = \"d\"\nsigning_key = \"k.pem\"\n[build]\n"
      "repositories = [\"https://git.example.org/acme\", \"/srv/git/\"]\n");
  auto c = load_node_config(path);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const auto& allowed = c->repositories;
  for (const char* ok : {"https://git.example.org/acme", "https://git.example.org/acme/app.git", "/srv/git/app"}) {
    EXPECT_TRUE(check_repository(allowed, ok).ok()) << ok;
  }
  for (const char* refused : {"https://git.example.org/acme-evil/app", "https://git.example.org/other", "/srv/gitx/app",
                              "/etc/secret", "srv/git/app", "file:///srv/git/app", "/srv/git/../../root/repo",
                              "https://git.example.org/acme/../x", "/srv/git/./app"}) {
    auto s = check_repository(allowed, refused);
    EXPECT_TRUE(s.is_bad_input()) << refused;
    EXPECT_NE(s.message().find(refused), std::string::npos) << s.message();
  }
  // Dot segments spelled with escapes or backslashes: libgit2 decodes %XX in a file:// URL (the first one opened
  // /srv/git/secret) and an HTTP server that normalizes paths decodes them before resolving "..".
  const std::vector<std::string> file_entry = {"file:///srv/git/app", "https://git.example.org/acme/"};
  for (const char* refused :
       {"file:///srv/git/app/%2e%2e/secret", "file:///srv/git/app/%2E%2E/secret", "file:///srv/git/app/.%2e/secret",
        "file:///srv/git/app/%2e", "https://git.example.org/acme/..%2fother",
        "https://git.example.org/acme/%2E%2e%2F..", "https://git.example.org/acme/..\\other",
        "https://git.example.org/acme/x%5c..%5c..%5cother"}) {
    auto s = check_repository(file_entry, refused);
    EXPECT_TRUE(s.is_bad_input()) << refused;
    EXPECT_NE(s.message().find("path segment"), std::string::npos) << s.message();
    EXPECT_FALSE(check_repository({}, refused).ok()) << refused;
  }
  for (const char* ok :
       {"file:///srv/git/app/sub%20dir", "https://git.example.org/acme/a%2e", "file:///srv/git/app/%zz"}) {
    EXPECT_TRUE(check_repository(file_entry, ok).ok()) << ok;
  }
  EXPECT_TRUE(check_repository({}, "/any/local/path").ok());
  EXPECT_TRUE(check_repository({}, "https://anywhere.example/x").ok());
  EXPECT_FALSE(check_repository({}, "/srv/../etc").ok());
  auto empty = load_node_config(
      write_config("node_id = \"n1\"\ndata_dir = \"d\"\nsigning_key = \"k.pem\"\n[build]\nrepositories = [\"\"]\n"));
  EXPECT_FALSE(empty.ok());
}

TEST(NodeConfig, TheShippedExampleLoads) {
  auto c = load_node_config(quorate::testing::source_dir() / "examples/node.toml");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->node_id, "node-a");
  EXPECT_EQ(c->transport.allowed_clients.size(), 2u);
}

}  // namespace
}  // namespace quorate::node
