// Issue 11, item 9: a peer holding a node's key announces last_sequence = 2^64-1 and answers every history
// request with nothing. The verifier used to ask again at once, about 2,600 times a second; it now backs off
// (100 ms doubling, capped), believes no gap larger than a million, and logs at warn. An honest node
// followed beside it is not held up.
#include "e2e/scripted_node.h"
#include "network_support.h"

namespace quorate::hostile {
namespace {

TEST(NetworkHostile, NodeClaimingTwoToTheSixtyFourIsBackedOff) {
  testing::ScratchDir dir;
  e2e::ScriptedNode liar("a", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
  e2e::ScriptedNode honest("b", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
  liar.claim_last_sequence(UINT64_MAX);
  TestVerifier v(dir.path(), {{"a", liar.publish_endpoint(), liar.control_endpoint(), ""},
                              {"b", honest.publish_endpoint(), honest.control_endpoint(), ""}});
  honest.add(claim("b", "c1", "good"));

  int requests = 0;
  auto start = SteadyClock::now();
  auto next_heartbeat = start;
  while (SteadyClock::now() - start < std::chrono::seconds(3)) {
    if (SteadyClock::now() >= next_heartbeat) {  // a heartbeat every 50 ms, each claiming 2^64-1
      liar.heartbeat();
      next_heartbeat += std::chrono::milliseconds(50);
    }
    requests += liar.serve();
    honest.serve();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Backing off from 100 ms: 100 + 200 + 400 + 800 + 1600 > 3 s, so about six requests; 2,600 a second
  // before.
  EXPECT_LE(requests, 12) << "history requests in 3 s";
  EXPECT_GE(requests, 2) << "the liar is still asked now and then";
  EXPECT_TRUE(wait_for([&] {
    honest.serve();
    return v.daemon->counters().stored == 1;
  })) << "the honest node's attestation";
  v.halt();
  std::string log = v.log_text.str();
  EXPECT_NE(log.find("history_no_progress"), std::string::npos);
  EXPECT_NE(log.find("implausible_sequence"), std::string::npos);
}

}  // namespace
}  // namespace quorate::hostile
