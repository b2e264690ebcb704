// The whole network as real processes on 127.0.0.1: four `quorate node` (three honest, one whose toolchain
// was tampered with), `quorate quorum` verifiers and `quorate submit`, over real builds of a Git repository.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <fstream>
#include <map>

#include "process.h"
#include "quorate/attest/keys.h"
#include "quorate/wire/frame.h"
#include "quorate/wire/socket.h"
#include "support/test_util.h"

namespace quorate::e2e {
namespace {

namespace pb = wire::pb;
using wire::MessageType;

Ran git(const std::filesystem::path& repo, std::vector<std::string> args) {
  std::vector<std::string> argv = testing::git_argv(repo, args);
  return run(argv, repo.parent_path(), std::chrono::seconds(60));
}

struct NodeProc {
  std::string id;
  int pub_port = free_port(), control_port = free_port();
  std::filesystem::path config;
  std::unique_ptr<Process> proc;
  int starts = 0;
};

struct VerifierProc {
  int pub_port = free_port(), query_port = free_port();
  std::filesystem::path config;
  std::unique_ptr<Process> proc;
  int starts = 0;
};

class Network {
 public:
  testing::ScratchDir dir;
  std::filesystem::path repo = dir / "repo";
  std::map<std::string, NodeProc> nodes;

  Network() {
    make_repo();
    // The rogue's "compiler": a tr that slips something in. Its node runs steps on the host, PATH first.
    testing::spit(dir / "evil" / "tr", "#!/bin/sh\n/usr/bin/tr \"$@\"; echo 'and a backdoor'\n");
    ::chmod((dir / "evil" / "tr").c_str(), 0755);
    for (const char* id : {"a", "b", "c", "r"}) {
      auto& n = nodes[id];
      n.id = id;
      auto pair = attest::generate_key(attest::KeyType::kEd25519).value();
      EXPECT_TRUE(attest::write_key_pair(dir / (n.id + ".key.pem"), pair).ok());
      n.config = dir / (n.id + ".node.toml");
      bool rogue = n.id == "r";
      testing::spit(n.config, "node_id = \"" + n.id + "\"\ndata_dir = \"" + n.id + "-data\"\nsigning_key = \"" + n.id +
                                  ".key.pem\"\n[network]\ninsecure = true\npublish = \"" + loopback(n.pub_port) +
                                  "\"\ncontrol = \"" + loopback(n.control_port) +
                                  "\"\nheartbeat_interval_ms = 200\n[build]\nkeep_images = \"" + n.id + "-images\"\n" +
                                  (rogue ? "sandbox = \"none\"\npath = [\"" + (dir / "evil").string() +
                                               "\", \"/usr/bin\", \"/bin\"]\n"
                                         : "sandbox = \"none\"\n"));
    }
  }

  void make_repo() {
    std::filesystem::create_directories(repo);
    ASSERT_EQ(git(repo, {"init", "-q", "-b", "main"}).code, 0);
    testing::spit(repo / "greeting.txt", "hello, reproducible world\n");
    testing::spit(
        repo / "quorate.toml",
        "[image]\nname = \"example.org/greeting\"\n\n[[steps]]\ncopy = [\"greeting.txt\"]\nto = \"/app\"\n\n"
        "[[steps]]\nrun = \"sleep ${DELAY:-0}; tr a-z A-Z < greeting.txt > $OUT/shout.txt\"\nto = \"/app\"\n");
    ASSERT_EQ(git(repo, {"add", "."}).code, 0);
    ASSERT_EQ(git(repo, {"commit", "-q", "-m", "first"}).code, 0);
  }
  // A second commit whose run step takes `seconds` (to be killed in the middle of).
  std::string slow_commit(int seconds) {
    testing::spit(
        repo / "quorate.toml",
        "[image]\nname = \"example.org/greeting\"\n\n[build]\nenv = { DELAY = \"" + std::to_string(seconds) +
            "\" }\n\n[[steps]]\ncopy = [\"greeting.txt\"]\nto = \"/app\"\n\n"
            "[[steps]]\nrun = \"sleep ${DELAY:-0}; tr a-z A-Z < greeting.txt > $OUT/shout.txt\"\nto = \"/app\"\n");
    EXPECT_EQ(git(repo, {"commit", "-q", "-am", "slow"}).code, 0);
    return head();
  }
  std::string head() {
    auto r = git(repo, {"rev-parse", "HEAD"});
    return r.out.substr(0, 40);
  }

  void start(NodeProc& n) {
    n.proc = std::make_unique<Process>(std::vector<std::string>{quorate_bin(), "node", "--config", n.config.string()},
                                       dir / (n.id + ".out"), dir / (n.id + "." + std::to_string(n.starts++) + ".err"));
    ASSERT_TRUE(
        wait_until([&] { return n.proc->err().find("node_started") != std::string::npos || !n.proc->running(); },
                   std::chrono::seconds(20)));
    ASSERT_TRUE(n.proc->running()) << n.proc->err();
  }
  void start_all() {
    for (auto& [id, n] : nodes) start(n);
  }

  // A verifier following every node under a policy with `threshold` and `on_conflict`.
  VerifierProc verifier(const std::string& name, int threshold, const std::string& on_conflict) {
    VerifierProc v;
    testing::spit(dir / (name + ".policy.toml"),
                  "threshold = " + std::to_string(threshold) + "\non_conflict = \"" + on_conflict + "\"\n");
    std::ofstream policy(dir / (name + ".policy.toml"), std::ios::app);
    v.config = dir / (name + ".quorum.toml");
    std::ofstream q(v.config);
    q << "policy = \"" << name << ".policy.toml\"\ndata_dir = \"" << name << "-data\"\n[network]\ninsecure = true\n"
      << "publish = \"" << loopback(v.pub_port) << "\"\nquery = \"" << loopback(v.query_port) << "\"\n"
      << "history_timeout_ms = 500\n";
    for (const auto& [id, n] : nodes) {
      policy << "\n[[nodes]]\nid = \"" << id << "\"\npublic_key = \"" << id << ".key.pem.pub.pem\"\n";
      q << "\n[[nodes]]\nid = \"" << id << "\"\npublish = \"" << loopback(n.pub_port) << "\"\ncontrol = \""
        << loopback(n.control_port) << "\"\n";
    }
    return v;
  }
  void start(VerifierProc& v, const std::string& name) {
    v.proc = std::make_unique<Process>(std::vector<std::string>{quorate_bin(), "quorum", "--config", v.config.string()},
                                       dir / (name + ".out"), dir / (name + "." + std::to_string(v.starts++) + ".err"));
    ASSERT_TRUE(
        wait_until([&] { return v.proc->err().find("verifier_started") != std::string::npos || !v.proc->running(); },
                   std::chrono::seconds(20)));
    ASSERT_TRUE(v.proc->running()) << v.proc->err();
  }

  // `quorate submit` to `which` nodes; with a verifier, --wait for its decision.
  Ran submit(const std::vector<std::string>& which, const std::string& commit, const VerifierProc* v,
             const std::string& request_id = "", const std::string& epoch = "") {
    std::vector<std::string> argv = {quorate_bin(), "submit",     "--repo", repo.string(), "--commit",
                                     commit,        "--insecure", "--json", "--timeout",   "120"};
    for (const auto& id : which) {
      argv.push_back("--node");
      argv.push_back(loopback(nodes[id].control_port));
    }
    if (!request_id.empty()) argv.insert(argv.end(), {"--request-id", request_id});
    if (!epoch.empty()) argv.insert(argv.end(), {"--source-date-epoch", epoch});
    if (v) argv.insert(argv.end(), {"--wait", "--quorum", loopback(v->query_port)});
    return run(argv, dir.path(), std::chrono::seconds(150));
  }

  // The sequences of a node's history, asked over its control socket.
  std::vector<uint64_t> history(const std::string& id) {
    auto ctx = wire::Context::create().value();
    wire::ClientSecurity cs;
    cs.transport = wire::Transport::kInsecure;
    std::vector<uint64_t> seqs;
    {
      auto dealer = wire::Socket::client(*ctx, wire::SocketType::kDealer, cs).value();
      EXPECT_TRUE(dealer.connect(loopback(nodes[id].control_port)).ok());
      pb::HistoryRequest req;
      EXPECT_TRUE(dealer.send({wire::encode_frame(MessageType::kHistoryRequest, req)}).ok());
      auto got = dealer.recv(10000);
      pb::HistoryResponse resp;
      if (got.ok() && got->has_value()) {
        EXPECT_TRUE(wire::decode_message((**got)[0], MessageType::kHistoryResponse, wire::Limits{}, resp).ok());
      }
      for (const auto& m : resp.attestations()) seqs.push_back(m.sequence());
    }
    return seqs;
  }
};

nlohmann::json parse_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << text;
  return j;
}

std::vector<std::string> names(const nlohmann::json& a) {
  std::vector<std::string> out;
  for (const auto& x : a) out.push_back(x.is_string() ? x.get<std::string>() : x["node_id"].get<std::string>());
  return out;
}

// One build round, every acceptance point that needs real builds: k=3 accepts with the rogue named; k=4 under
// reject rejects; a verifier started after the builds catches up; a verifier killed and restarted decides the
// same; a node killed mid-build and restarted has no duplicate or lost sequence numbers.
TEST(Network, RebuildQuorumRogueLateStartAndRestarts) {
  Network net;
  net.start_all();
  auto k3 = net.verifier("k3", 3, "majority");
  net.start(k3, "k3");
  std::string commit = net.head();

  auto accepted = net.submit({"a", "b", "c", "r"}, commit, &k3);
  ASSERT_EQ(accepted.code, 0) << accepted.out << accepted.err;
  auto j = parse_json(accepted.out);
  EXPECT_TRUE(j["decision"]["accepted"].get<bool>());
  EXPECT_EQ(names(j["decision"]["agreeing"]), (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(j["decision"]["dissenters"].size(), 1u) << j.dump(2);
  EXPECT_EQ(j["decision"]["dissenters"][0]["node_id"], "r");
  EXPECT_NE(j["decision"]["dissenters"][0]["digest"], j["decision"]["digest"]);
  std::string accepted_digest = j["decision"]["digest"];

  // The nodes kept their images (build.keep_images); `quorate diff` of honest vs rogue names the one changed
  // file, in the one layer, and nothing else.
  auto kept = [&](const std::string& id, const std::string& digest) {
    return net.dir / (id + "-images") / digest.substr(7);
  };
  std::string rogue_digest = j["decision"]["dissenters"][0]["digest"];
  ASSERT_TRUE(std::filesystem::exists(kept("a", accepted_digest) / "index.json"));
  ASSERT_TRUE(std::filesystem::exists(kept("r", rogue_digest) / "index.json"));
  auto diff =
      run({quorate_bin(), "diff", "--json", kept("a", accepted_digest).string(), kept("r", rogue_digest).string()},
          net.dir.path(), std::chrono::seconds(60));
  EXPECT_EQ(diff.code, 1) << diff.out << diff.err;
  auto jd = parse_json(diff.out);
  std::vector<std::string> changed;
  for (const auto& layer : jd["layers"]) {
    for (const auto& f : layer["changes"])
      changed.push_back(std::to_string(layer["index"].get<int>()) + ":" + f["path"].get<std::string>());
  }
  EXPECT_EQ(changed, (std::vector<std::string>{"1:app/shout.txt"})) << jd.dump(2);

  // A second verifier, k = 4 under reject, started only now: it catches up from the nodes' history.
  auto k4 = net.verifier("k4", 4, "reject");
  net.start(k4, "k4");
  auto rejected = net.submit({"a", "b", "c", "r"}, commit, &k4);
  EXPECT_EQ(rejected.code, 1) << rejected.out << rejected.err;
  auto jr = parse_json(rejected.out);
  EXPECT_FALSE(jr["decision"]["accepted"].get<bool>());
  EXPECT_EQ(jr["decision"]["dissenters"].size() + jr["decision"]["agreeing"].size(), 4u);

  // The k=3 verifier killed and restarted: the same decision.
  k3.proc->signal(SIGKILL);
  ASSERT_TRUE(k3.proc->wait(std::chrono::seconds(10)).has_value());
  net.start(k3, "k3");
  auto again = net.submit({"a", "b", "c", "r"}, commit, &k3);
  ASSERT_EQ(again.code, 0) << again.out << again.err;
  auto ja = parse_json(again.out);
  EXPECT_EQ(ja["decision"]["digest"], accepted_digest);
  EXPECT_EQ(ja["decision"]["agreeing"], j["decision"]["agreeing"]);
  EXPECT_EQ(ja["decision"]["dissenters"], j["decision"]["dissenters"]);

  // Node a killed with SIGKILL in the middle of a slow build, then restarted: the build is redone under the
  // next sequence number; nothing duplicated, nothing lost.
  std::string slow = net.slow_commit(3);
  auto before = net.history("a");
  ASSERT_EQ(before, (std::vector<uint64_t>{1}));
  auto queued = net.submit({"a"}, slow, nullptr, "slow-1");
  ASSERT_EQ(queued.code, 0) << queued.err;
  auto& a = net.nodes["a"];
  ASSERT_TRUE(wait_until(
      [&] {
        return a.proc->err().find("build_started") != std::string::npos &&
               a.proc->err().find(slow) != std::string::npos;
      },
      std::chrono::seconds(30)));
  a.proc->signal(SIGKILL);
  ASSERT_TRUE(a.proc->wait(std::chrono::seconds(10)).has_value());
  EXPECT_EQ(a.proc->err().find("\"sequence\":2"), std::string::npos) << "nothing stored for the killed build";
  net.start(a);
  EXPECT_EQ(net.history("a"), (std::vector<uint64_t>{1}));
  auto redone = net.submit({"a", "b", "c", "r"}, slow, &k3, "slow-1");
  ASSERT_EQ(redone.code, 0) << redone.out << redone.err;
  EXPECT_EQ(net.history("a"), (std::vector<uint64_t>{1, 2}));
  for (const char* id : {"b", "c", "r"}) EXPECT_EQ(net.history(id), (std::vector<uint64_t>{1, 2})) << id;

  // Everyone stops cleanly.
  for (auto& [id, n] : net.nodes) {
    n.proc->signal(SIGTERM);
    EXPECT_EQ(n.proc->wait(std::chrono::seconds(20)), 0) << id;
  }
  for (auto* v : {&k3, &k4}) {
    v->proc->signal(SIGTERM);
    EXPECT_EQ(v->proc->wait(std::chrono::seconds(20)), 0);
  }
}

// Issue 11, item 3: the same commit asked with another SOURCE_DATE_EPOCH is another subject. Before, each node
// then held two digests for one subject key: the ACCEPTED commit became REJECTED (equivocation) for good.
TEST(Network, AnotherEpochIsAnotherSubjectNotEquivocation) {
  Network net;
  net.nodes.erase("r");
  net.start_all();
  auto k3 = net.verifier("k3", 3, "reject");
  net.start(k3, "k3");
  std::string commit = net.head();
  auto first = net.submit({"a", "b", "c"}, commit, &k3);
  ASSERT_EQ(first.code, 0) << first.out << first.err;
  auto other = net.submit({"a", "b", "c"}, commit, &k3, "", "1234567890");
  ASSERT_EQ(other.code, 0) << other.out << other.err;
  auto jo = parse_json(other.out);
  EXPECT_EQ(jo["decision"]["subject"]["source_date_epoch"], "1234567890") << jo.dump(2);  // int64 as JSON string
  EXPECT_NE(jo["decision"]["digest"], parse_json(first.out)["decision"]["digest"]);
  auto again = net.submit({"a", "b", "c"}, commit, &k3);
  ASSERT_EQ(again.code, 0) << again.out << again.err;
  auto ja = parse_json(again.out);
  EXPECT_TRUE(ja["decision"]["accepted"].get<bool>());
  EXPECT_TRUE(ja["decision"]["void_nodes"].empty()) << ja.dump(2);
  for (auto& [id, n] : net.nodes) n.proc->signal(SIGTERM);
  k3.proc->signal(SIGTERM);
}

// Issue 11, item 1, through a node: a commit whose tree names "../../victim/pwned" and a symlink followed by a
// blob under it is refused before anything is written; nothing is attested; the victim directory stays empty.
TEST(Network, AHostileCommitIsRefusedByTheNodeAndNothingIsWrittenOutside) {
  Network net;
  std::filesystem::create_directories(net.dir / "victim");
  auto hash = [&](const std::string& type, const std::string& bytes) {
    testing::spit(net.dir / "object", bytes);
    std::vector<std::string> args = {"hash-object", "-w", "-t", type, "--literally", (net.dir / "object").string()};
    auto r = git(net.repo, args);
    EXPECT_EQ(r.code, 0) << r.err;
    return r.out.substr(0, 40);
  };
  auto raw = [](const std::string& hex) {
    std::string out;
    for (size_t i = 0; i < 40; i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
  };
  std::string owned = hash("blob", "owned\n");
  std::string link = hash("blob", (net.dir / "victim").string());
  std::string recipe = git(net.repo, {"rev-parse", "HEAD:quorate.toml"}).out.substr(0, 40);
  std::string greeting = git(net.repo, {"rev-parse", "HEAD:greeting.txt"}).out.substr(0, 40);
  std::string escape = "../../../../../../../../.." + (net.dir / "victim").string() + "/pwned";
  std::string tree = hash("tree", "100644 " + escape + std::string(1, '\0') + raw(owned) + "100644 greeting.txt" +
                                      std::string(1, '\0') + raw(greeting) + "120000 lnk" + std::string(1, '\0') +
                                      raw(link) + "100644 lnk/pwned" + std::string(1, '\0') + raw(owned) +
                                      "100644 quorate.toml" + std::string(1, '\0') + raw(recipe));
  auto made = git(net.repo, {"commit-tree", tree, "-m", "hostile"});
  ASSERT_EQ(made.code, 0) << made.err;
  std::string commit = made.out.substr(0, 40);
  auto& a = net.nodes["a"];
  net.start(a);
  auto r = net.submit({"a"}, commit, nullptr, "hostile-1");
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(
      wait_until([&] { return a.proc->err().find("build_failed") != std::string::npos; }, std::chrono::seconds(60)))
      << a.proc->err();
  EXPECT_NE(a.proc->err().find("hostile tree entry"), std::string::npos) << a.proc->err();
  EXPECT_TRUE(net.history("a").empty());
  EXPECT_TRUE(std::filesystem::is_empty(net.dir / "victim"));
  a.proc->signal(SIGTERM);
}

}  // namespace
}  // namespace quorate::e2e
